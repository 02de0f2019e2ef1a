"""Validation of the agent fields of a request: tools, tool calls and results, content parts,
the tool choice, the response format, stop sequences, top_p and seed.

Errors name the field (`tools[2].parameters`, `messages[4].tool_call_id`) and say what is wrong.
Every text here counts toward `limits.max_prompt_chars` (the caller adds the returned sizes), and
each list has its own bound, so a request costs time linear in its size.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import orjson

from router.api import router_pb2 as pb
from router.core import json_schema
from router.core.errors import InvalidArgument
from router.core.types import (
    AUTO,
    TEXT,
    ChatMessage,
    ContentPart,
    ResponseFormat,
    ToolCall,
    ToolChoice,
    ToolSpec,
)

NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")  # tool and response-schema names (fullmatch)
MAX_TOOLS = 128
MAX_TOOL_CALLS = 128  # per message
MAX_PARTS = 64  # per message
MAX_STOP = 4
MAX_STOP_CHARS = 256
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
TOOL_CHOICES = ("auto", "none", "required", "tool")
FORMATS = ("text", "json_object", "json_schema")


def is_agent_message(m: pb.Message) -> bool:
    """True if the message uses more than role and content (the plain path skips the rest)."""
    return bool(m.parts or m.tool_calls or m.tool_call_id) or m.role == "tool"


def message(i: int, m: pb.Message, call_ids: set[str], max_id: int) -> tuple[ChatMessage, int]:
    """(the message, its characters); `call_ids` holds the ids of earlier tool calls and gets
    this message's."""
    field = f"messages[{i}]"
    chars = len(m.content)
    parts: list[ContentPart] = []
    if len(m.parts) > MAX_PARTS:
        raise InvalidArgument(f"{field}.parts", f"at most {MAX_PARTS} parts are allowed")
    for j, p in enumerate(m.parts):
        part = _part(f"{field}.parts[{j}]", p)
        chars += len(part.text) + len(part.url) + len(part.data)
        parts.append(part)
    if m.role == "assistant" and any(p.type == "image" for p in parts):
        raise InvalidArgument(f"{field}.parts", "an assistant message cannot carry images")
    calls: list[ToolCall] = []
    if m.tool_calls:
        if m.role != "assistant":
            raise InvalidArgument(f"{field}.tool_calls", "only assistant messages make tool calls")
        if len(m.tool_calls) > MAX_TOOL_CALLS:
            raise InvalidArgument(
                f"{field}.tool_calls", f"at most {MAX_TOOL_CALLS} calls are allowed"
            )
        for j, c in enumerate(m.tool_calls):
            call = _call(f"{field}.tool_calls[{j}]", c, call_ids, max_id)
            chars += len(call.id) + len(call.name) + len(call.arguments)
            calls.append(call)
    if m.role == "tool":
        if not m.tool_call_id:
            raise InvalidArgument(
                f"{field}.tool_call_id", "a tool message must name the tool call it answers"
            )
        if m.tool_call_id not in call_ids:
            raise InvalidArgument(
                f"{field}.tool_call_id",
                f"{_shown(m.tool_call_id)} answers no tool call of an earlier assistant message",
            )
    elif m.tool_call_id:
        raise InvalidArgument(f"{field}.tool_call_id", "only tool messages answer a tool call")
    msg = ChatMessage(m.role, m.content, tuple(parts), tuple(calls), m.tool_call_id)
    return msg, chars


def tools(entries: Sequence[pb.Tool]) -> tuple[tuple[ToolSpec, ...], int]:
    """(the tools, their characters)."""
    if len(entries) > MAX_TOOLS:
        raise InvalidArgument("tools", f"{len(entries)} tools exceed the limit of {MAX_TOOLS}")
    out: list[ToolSpec] = []
    seen: set[str] = set()
    chars = 0
    for i, t in enumerate(entries):
        field = f"tools[{i}]"
        _name(f"{field}.name", t.name)
        if t.name in seen:
            raise InvalidArgument(f"{field}.name", f"{t.name!r} is offered twice")
        seen.add(t.name)
        params = t.parameters.strip()
        if params:
            try:
                schema = json_schema.parse_schema(params)
            except ValueError as exc:
                raise InvalidArgument(f"{field}.parameters", str(exc)) from None
            if schema.get("type", "object") != "object":
                raise InvalidArgument(f"{field}.parameters", "must be an object schema")
            spec = ToolSpec(t.name, t.description, params)
        else:
            spec = ToolSpec(t.name, t.description)
        chars += len(spec.name) + len(spec.description) + len(spec.parameters)
        out.append(spec)
    return tuple(out), chars


def tool_choice(msg: pb.GenerateRequest, offered: Sequence[ToolSpec]) -> ToolChoice:
    if not msg.HasField("tool_choice"):
        return AUTO
    mode, name = msg.tool_choice.mode or "auto", msg.tool_choice.name
    if mode not in TOOL_CHOICES:
        raise InvalidArgument(
            "tool_choice.mode", f"unknown mode {_shown(mode)} (one of {', '.join(TOOL_CHOICES)})"
        )
    if mode in ("required", "tool") and not offered:
        raise InvalidArgument("tool_choice.mode", f"{mode} needs at least one tool in `tools`")
    if mode == "tool":
        if not any(t.name == name for t in offered):
            raise InvalidArgument("tool_choice.name", f"{_shown(name)} is not one of `tools`")
        return ToolChoice("tool", name)
    if name:
        raise InvalidArgument("tool_choice.name", "is set only with mode tool")
    return AUTO if mode == "auto" else ToolChoice(mode)


def response_format(msg: pb.GenerateRequest) -> tuple[ResponseFormat, int]:
    """(the format, its characters)."""
    if not msg.HasField("response_format"):
        return TEXT, 0
    f = msg.response_format
    kind = f.type or "text"
    if kind not in FORMATS:
        raise InvalidArgument(
            "response_format.type", f"unknown type {_shown(kind)} (one of {', '.join(FORMATS)})"
        )
    if kind != "json_schema":
        if f.schema or f.name or f.strict:
            raise InvalidArgument(
                "response_format.schema", f"name, schema and strict go with json_schema, not {kind}"
            )
        return (TEXT if kind == "text" else ResponseFormat(kind)), 0
    name = f.name or "response"
    _name("response_format.name", name)
    if not f.schema.strip():
        raise InvalidArgument("response_format.schema", "json_schema needs a schema")
    try:
        json_schema.parse_schema(f.schema)
    except ValueError as exc:
        raise InvalidArgument("response_format.schema", str(exc)) from None
    return ResponseFormat("json_schema", name, f.schema, f.strict), len(f.schema)


def stop(entries: Sequence[str]) -> tuple[str, ...]:
    if len(entries) > MAX_STOP:
        raise InvalidArgument("stop", f"at most {MAX_STOP} stop sequences are allowed")
    for i, s in enumerate(entries):
        if not s:
            raise InvalidArgument(f"stop[{i}]", "must not be empty")
        if len(s) > MAX_STOP_CHARS:
            raise InvalidArgument(
                f"stop[{i}]", f"{len(s)} characters exceed the limit of {MAX_STOP_CHARS}"
            )
    return tuple(dict.fromkeys(entries))


def top_p(msg: pb.GenerateRequest) -> float | None:
    if not msg.HasField("top_p"):
        return None
    value = msg.top_p
    if not (0.0 < value <= 1.0) or math.isnan(value):
        raise InvalidArgument("top_p", f"must be within (0, 1], got {value}")
    return value


def _part(field: str, p: pb.ContentPart) -> ContentPart:
    if p.type == "text":
        if p.image_url or p.image_data or p.media_type:
            raise InvalidArgument(field, "a text part carries only `text`")
        return ContentPart("text", text=p.text)
    if p.type != "image":
        raise InvalidArgument(f"{field}.type", f"unknown part type {_shown(p.type)} (text, image)")
    if p.text:
        raise InvalidArgument(f"{field}.text", "an image part carries no text")
    if bool(p.image_url) == bool(p.image_data):
        raise InvalidArgument(field, "an image part has exactly one of image_url and image_data")
    if p.image_url:
        url = p.image_url
        if url.startswith("data:"):
            media, sep, _ = url[5:].partition(";base64,")
            if not sep or media not in IMAGE_TYPES:
                raise InvalidArgument(
                    f"{field}.image_url",
                    f"a data URL must be data:<{'|'.join(IMAGE_TYPES)}>;base64,<data>",
                )
        elif not url.startswith(("https://", "http://")) or not url.isprintable():
            raise InvalidArgument(f"{field}.image_url", "must be an http(s) or data: URL")
        return ContentPart("image", url=url, media_type=p.media_type)
    if p.media_type not in IMAGE_TYPES:
        raise InvalidArgument(
            f"{field}.media_type", f"must be one of {', '.join(IMAGE_TYPES)} with image_data"
        )
    return ContentPart("image", data=p.image_data, media_type=p.media_type)


def _call(field: str, c: pb.ToolCall, call_ids: set[str], max_id: int) -> ToolCall:
    if not c.id:
        raise InvalidArgument(f"{field}.id", "a tool call needs an id")
    if len(c.id) > max_id or not c.id.isprintable():
        raise InvalidArgument(f"{field}.id", f"must be printable, at most {max_id} characters")
    if c.id in call_ids:
        raise InvalidArgument(f"{field}.id", f"{_shown(c.id)} is used by an earlier tool call")
    call_ids.add(c.id)
    _name(f"{field}.name", c.name)
    arguments = c.arguments.strip() or "{}"
    try:
        doc = orjson.loads(arguments)
    except orjson.JSONDecodeError as exc:
        raise InvalidArgument(f"{field}.arguments", f"not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise InvalidArgument(f"{field}.arguments", "must be a JSON object")
    return ToolCall(c.id, c.name, arguments)


def _name(field: str, name: str) -> None:
    if not NAME.fullmatch(name):
        raise InvalidArgument(field, f"{_shown(name)} does not match ^[A-Za-z0-9_-]{{1,64}}$")


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 40 else f"{text[:40]!r}... ({len(text)} characters)"
