"""Client-side conversion of OpenAI-style messages, tools and formats into the gRPC request.

Agent code already holds conversations in the Chat Completions shape, so the client takes them as
they are: a message is `{"role", "content"}` where content is a string or a list of parts
(`{"type": "text", "text"}`, `{"type": "image_url", "image_url": {"url"}}`, or
`{"type": "image", "data": bytes, "media_type"}`); an assistant message may carry `tool_calls`
(`{"id", "type": "function", "function": {"name", "arguments"}}` or the flat `{"id", "name",
"arguments"}`); a `tool` message carries `tool_call_id`. Arguments and schemas may be dicts (they
are sent as JSON text) or JSON text. `pb` messages pass through unchanged. The server validates.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from router.api import router_pb2 as pb


@dataclass(frozen=True)
class ToolCall:
    """A complete tool call of the assistant's answer: its id, the tool's name, JSON arguments."""

    id: str
    name: str
    arguments: str

    def args(self) -> Any:
        """The arguments parsed from JSON."""
        return json.loads(self.arguments or "{}")


def _json_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _part(part: Any) -> pb.ContentPart:
    if isinstance(part, pb.ContentPart):
        return part
    if isinstance(part, str):
        return pb.ContentPart(type="text", text=part)
    kind = part.get("type", "text")
    if kind == "text":
        return pb.ContentPart(type="text", text=part.get("text", ""))
    if kind == "image_url":
        url = part.get("image_url", "")
        url = url["url"] if isinstance(url, Mapping) else url
        return pb.ContentPart(type="image", image_url=url)
    if kind == "image":
        return pb.ContentPart(
            type="image",
            image_url=part.get("url", ""),
            image_data=part.get("data", b""),
            media_type=part.get("media_type", ""),
        )
    raise ValueError(f"unknown content part type {kind!r} (text, image_url or image)")


def _call(call: Any) -> pb.ToolCall:
    if isinstance(call, pb.ToolCall | ToolCall):
        return pb.ToolCall(id=call.id, name=call.name, arguments=call.arguments)
    function = call.get("function", call)
    return pb.ToolCall(
        id=call.get("id", ""),
        name=function.get("name", ""),
        arguments=_json_text(function.get("arguments", "{}")),
    )


def message(m: Any) -> pb.Message:
    """One message (dict in the Chat Completions shape, or pb.Message) as a pb.Message."""
    if isinstance(m, pb.Message):
        return m
    content = m.get("content") or ""
    text, parts = (content, []) if isinstance(content, str) else ("", [_part(p) for p in content])
    return pb.Message(
        role=m["role"],
        content=text,
        parts=parts,
        tool_calls=[_call(c) for c in m.get("tool_calls") or ()],
        tool_call_id=m.get("tool_call_id", ""),
    )


def tool(t: Any) -> pb.Tool:
    """A tool: `{"type": "function", "function": {...}}`, a flat `{name, description,
    parameters}` dict or a pb.Tool; parameters may be a dict."""
    if isinstance(t, pb.Tool):
        return t
    spec = t.get("function", t)
    params = spec.get("parameters")
    return pb.Tool(
        name=spec["name"],
        description=spec.get("description", ""),
        parameters="" if params is None else _json_text(params),
    )


def tool_choice(choice: Any) -> pb.ToolChoice:
    """ "auto", "none", "required", a tool's name, `{"type": "function", "function": {"name"}}`."""
    if isinstance(choice, pb.ToolChoice):
        return choice
    if isinstance(choice, str):
        if choice in ("auto", "none", "required"):
            return pb.ToolChoice(mode=choice)
        return pb.ToolChoice(mode="tool", name=choice)
    name = choice.get("function", choice).get("name", "")
    return pb.ToolChoice(mode="tool", name=name)


def response_format(fmt: Any) -> pb.ResponseFormat:
    """`{"type": "json_object"}`, `{"type": "json_schema", "json_schema": {name, schema,
    strict}}`, or a bare JSON Schema dict (taken as a strict json_schema)."""
    if isinstance(fmt, pb.ResponseFormat):
        return fmt
    kind = fmt.get("type")
    if kind in ("text", "json_object"):
        return pb.ResponseFormat(type=kind)
    if kind == "json_schema" and "json_schema" in fmt:
        spec = fmt["json_schema"]
        return pb.ResponseFormat(
            type="json_schema",
            name=spec.get("name", ""),
            schema=_json_text(spec.get("schema", {})),
            strict=bool(spec.get("strict", False)),
        )
    return pb.ResponseFormat(type="json_schema", name="output", schema=json.dumps(fmt), strict=True)


def agent_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """Converts the agent keywords of `build_request` (tools, tool_choice, response_format,
    stop) in place to their pb forms and returns the dict."""
    if (tools := fields.get("tools")) is not None:
        fields["tools"] = [tool(t) for t in tools]
    if (choice := fields.get("tool_choice")) is not None:
        fields["tool_choice"] = tool_choice(choice)
    if (fmt := fields.get("response_format")) is not None:
        fields["response_format"] = response_format(fmt)
    if isinstance(stop := fields.get("stop"), str):
        fields["stop"] = [stop]
    return fields


def messages(prompt: str | Sequence[Any], system: str | None) -> list[pb.Message]:
    """The request's messages: a prompt string is one user message; `system` goes first."""
    items = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
    if system is not None:
        items.insert(0, {"role": "system", "content": system})
    return [message(m) for m in items]


class ToolCallAssembler:
    """Joins the streamed ToolCallDelta fragments into complete calls, by index."""

    def __init__(self) -> None:
        self._calls: dict[int, list[str]] = {}

    def feed(self, delta: pb.ToolCallDelta) -> None:
        call = self._calls.setdefault(delta.index, ["", "", ""])
        call[0] = call[0] or delta.id
        call[1] = call[1] or delta.name
        call[2] += delta.arguments

    def calls(self) -> tuple[ToolCall, ...]:
        return tuple(ToolCall(*self._calls[i]) for i in sorted(self._calls))
