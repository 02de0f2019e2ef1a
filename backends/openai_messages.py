"""A Request as an OpenAI Chat Completions body: messages, tools, choices, formats, sampling.

Messages: text-only messages keep `content` a string (what every compatible server takes); a
user message with images has a list of content parts, its `content` first, then its parts in
order (`{type: text}`, `{type: image_url, image_url: {url}}` with the http(s) or data: URL, or
a data: URL built from the image's bytes and media type). An assistant message carries its
`tool_calls` (`{id, type: function, function: {name, arguments}}`, `content` null when it has
no text), a tool message its `tool_call_id`. OpenAI takes images only in user messages: an
image in a system message or in a tool result is refused with InvalidArgument naming it
(`messages[2].parts[0]`), never dropped silently.

Tools become `{type: function, function: {name, description, parameters}}` with `parameters`
the parsed schema; `tool_choice` is "auto", "none", "required" or `{type: function, function:
{name}}` (sent when tools are); `parallel_tool_calls` only when the request sets it;
`response_format` `{type: json_object}` or `{type: json_schema, json_schema: {name, schema,
strict}}`; `stop`, `top_p` and `seed` when set.

Dialect `llama_cpp_python` (llama-cpp-python's `llama_cpp.server`): a JSON Schema goes as
`{type: json_object, schema}` (what that server turns into a grammar), `required` with a
single tool as that tool's named choice (the server builds a call grammar only for a named one;
with several tools it would answer in text, so `required` is refused, InvalidArgument on
`tool_choice.mode`),
and an assistant message's empty `content` as "" rather than null (its chat templates
concatenate the content as a string; templates without tool support do not show the calls).
"""

from __future__ import annotations

import base64
import json
from typing import Any, Literal

from router.core.errors import InvalidArgument
from router.core.types import ChatMessage, ContentPart, Request, ToolChoice

Dialect = Literal["openai", "llama_cpp_python"]


def image_url(part: ContentPart) -> str:
    """The URL of an image part: its own, or a data: URL of its bytes."""
    if part.url:
        return part.url
    return f"data:{part.media_type};base64,{base64.b64encode(part.data).decode('ascii')}"


def _content_parts(m: ChatMessage) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = [{"type": "text", "text": m.content}] if m.content else []
    for p in m.parts:
        if p.type == "image":
            parts.append({"type": "image_url", "image_url": {"url": image_url(p)}})
        else:
            parts.append({"type": "text", "text": p.text})
    return parts


def _no_images(m: ChatMessage, i: int, where: str) -> None:
    for j, p in enumerate(m.parts):
        if p.type == "image":
            reason = f"OpenAI-compatible backends take no images in {where}"
            raise InvalidArgument(f"messages[{i}].parts[{j}]", reason)


def openai_message(m: ChatMessage, i: int, dialect: Dialect = "openai") -> dict[str, Any]:
    """One message in the Chat Completions shape (see the module docstring); `i` is its index,
    for errors."""
    if m.role == "assistant":
        empty = "" if dialect == "llama_cpp_python" else None
        doc: dict[str, Any] = {"role": "assistant", "content": m.text or empty}
        if m.tool_calls:
            doc["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                }
                for c in m.tool_calls
            ]
        elif doc["content"] is None:
            doc["content"] = ""
        return doc
    if m.role == "tool":
        _no_images(m, i, "tool results")
        doc = {"role": "tool", "content": m.text}
        if m.tool_call_id:
            doc["tool_call_id"] = m.tool_call_id
        return doc
    if m.role == "system":
        _no_images(m, i, "system messages")
        return {"role": "system", "content": m.text}
    if m.images:
        return {"role": m.role, "content": _content_parts(m)}
    return {"role": m.role, "content": m.text}


def tool_choice(choice: ToolChoice) -> str | dict[str, Any]:
    """The `tool_choice` field: a mode's name, or the named function."""
    if choice.mode == "tool":
        return {"type": "function", "function": {"name": choice.name}}
    return choice.mode


def openai_fields(request: Request, dialect: Dialect = "openai") -> dict[str, Any]:
    """The body fields of `request` beside model, max_tokens, temperature and streaming."""
    body: dict[str, Any] = {
        "messages": [openai_message(m, i, dialect) for i, m in enumerate(request.messages)]
    }
    if request.tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    **({"description": t.description} if t.description else {}),
                    "parameters": json.loads(t.parameters),
                },
            }
            for t in request.tools
        ]
        choice = request.tool_choice
        if dialect == "llama_cpp_python" and choice.mode == "required":
            if len(request.tools) > 1:
                reason = (
                    "llama_cpp.server forces a call only for a named tool: name one of the "
                    f"{len(request.tools)} tools (mode tool), or offer one"
                )
                raise InvalidArgument("tool_choice.mode", reason)
            choice = ToolChoice("tool", request.tools[0].name)
        body["tool_choice"] = tool_choice(choice)
        if request.parallel_tool_calls is not None:
            body["parallel_tool_calls"] = request.parallel_tool_calls
    fmt = request.response_format
    if fmt.type == "json_object":
        body["response_format"] = {"type": "json_object"}
    elif fmt.type == "json_schema":
        schema = json.loads(fmt.schema) if fmt.schema else {}
        if dialect == "llama_cpp_python":
            body["response_format"] = {"type": "json_object", "schema": schema}
        else:
            spec = {"name": fmt.name or "response", "schema": schema, "strict": fmt.strict}
            body["response_format"] = {"type": "json_schema", "json_schema": spec}
    if request.stop:
        body["stop"] = list(request.stop)
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.seed is not None:
        body["seed"] = request.seed
    return body
