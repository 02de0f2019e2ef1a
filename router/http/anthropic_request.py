"""Anthropic Messages request bodies -> the gRPC request (its checks follow in convert.py).

Taken: model (`auto` or empty: the router decides), max_tokens (required), system (text or text
blocks; an empty one is left out), messages (at least one; user and assistant turns; content as
text or blocks: text, image by base64 or URL, tool_use in assistant turns, tool_result in user
turns — each becomes a tool message answering its call, before the turn's other blocks), tools
(custom tools: name, description, input_schema), tool_choice (auto, any, tool, none;
disable_parallel_tool_use), stop_sequences, temperature, top_p, metadata.user_id, stream.
Refused with 400 naming the field: server tools (a tool with another `type`), extended thinking,
block types the router cannot carry (documents, thinking, server tool results), a tool_use
`input` or an `input_schema` that is not a JSON object, tool_choice any or tool without tools.
Ignored: top_k (no backend contract carries it), service_tier, cache_control. The system
prompt's blocks and a tool result's blocks are bounded like a message's parts
(agent_fields.MAX_PARTS); convert.py bounds the rest. Tool-call ids pass through unchanged both
ways (a backend's `call_...` id comes back as such in tool_result).
router/http/anthropic_names.py names convert.py's fields in the body's terms.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from router.api import router_pb2 as pb
from router.api.agent_fields import MAX_PARTS
from router.core.errors import InvalidArgument
from router.http.anthropic_names import Names, Origin
from router.http.face import Parsed
from router.http.fields import array, boolean, integer, json_text, number, obj, text

AUTO = ("", "auto")
CHOICES = {"auto": "auto", "any": "required", "tool": "tool", "none": "none"}


def parse(body: dict[str, Any]) -> Parsed:
    """The Parsed request of a Messages body (see the module docstring)."""
    model = text("model", body.get("model", ""))
    if body.get("max_tokens") is None:
        raise InvalidArgument("max_tokens", "is required")
    msg = pb.GenerateRequest(model="" if model in AUTO else model)
    msg.max_tokens = integer("max_tokens", body["max_tokens"], 1, 2**31 - 1)
    thinking = body.get("thinking")
    if thinking is not None and obj("thinking", thinking).get("type") != "disabled":
        raise InvalidArgument("thinking", "extended thinking is not supported")
    names = Names()
    if (system := body.get("system")) is not None and (prompt := _system(system)):
        msg.messages.append(pb.Message(role="system", content=prompt))
        names.add(Origin("system", "system", blocks="system"))
    turns = array("messages", body.get("messages"))
    if not turns:  # a system prompt alone is no conversation
        raise InvalidArgument("messages", "at least one message is required")
    for i, turn in enumerate(turns):
        msg.messages.extend(_turn(f"messages[{i}]", turn, names))
    if (value := body.get("temperature")) is not None:
        msg.temperature = number("temperature", value)
    if (value := body.get("top_p")) is not None:
        msg.top_p = number("top_p", value)
    if (stop := body.get("stop_sequences")) is not None:
        stops = array("stop_sequences", stop)
        msg.stop.extend(text(f"stop_sequences[{i}]", s) for i, s in enumerate(stops))
    if (tools := body.get("tools")) is not None:
        msg.tools.extend(_tool(f"tools[{i}]", t) for i, t in enumerate(array("tools", tools)))
    if (choice := body.get("tool_choice")) is not None:
        _tool_choice(msg, obj("tool_choice", choice))
    if (metadata := body.get("metadata")) is not None:
        user = obj("metadata", metadata).get("user_id")
        if user is not None:
            msg.metadata["user_id"] = text("metadata.user_id", user)
    stream = body.get("stream")
    return Parsed(msg, stream is not None and boolean("stream", stream), model, rename=names)


def _system(value: Any) -> str:
    if isinstance(value, str):
        return value
    blocks = _blocks("system", value)
    texts = []
    for i, block in enumerate(blocks):
        b = obj(f"system[{i}]", block)
        if b.get("type") != "text":
            raise InvalidArgument(f"system[{i}].type", "must be text")
        texts.append(text(f"system[{i}].text", b.get("text")))
    return "\n\n".join(texts)


def _blocks(field: str, value: Any) -> list[Any]:
    """A list of content blocks that convert.py never sees as one (the system prompt's, a tool
    result's texts): bounded like a message's parts."""
    if not isinstance(value, list):
        raise InvalidArgument(field, "must be a string or an array of content blocks")
    blocks = value
    if len(blocks) > MAX_PARTS:
        raise InvalidArgument(field, f"at most {MAX_PARTS} blocks are allowed")
    return blocks


def _object_text(field: str, value: Any) -> str:
    """A JSON object (not JSON text, as the Messages API takes none) as compact JSON text."""
    return json_text(field, obj(field, value))


def _turn(field: str, value: Any, names: Names) -> list[pb.Message]:
    """One turn as pb messages: its tool results first (one tool message each), then the rest;
    `names` learns where each came from."""
    turn = obj(field, value)
    role = turn.get("role")
    if role not in ("user", "assistant"):
        raise InvalidArgument(f"{field}.role", "must be user or assistant")
    content = turn.get("content")
    if isinstance(content, str):
        names.add(Origin(field, f"{field}.content"))
        return [pb.Message(role=role, content=content)]
    out: list[pb.Message] = []
    rest = pb.Message(role=role)
    parts: list[str] = []  # the block behind each of rest's parts
    calls: list[str] = []  # and each of its tool calls
    if not isinstance(content, list):
        raise InvalidArgument(f"{field}.content", "must be a string or an array of content blocks")
    for j, block in enumerate(content):
        where = f"{field}.content[{j}]"
        b = obj(where, block)
        kind = b.get("type")
        if kind == "text":
            rest.parts.append(
                pb.ContentPart(type="text", text=text(f"{where}.text", b.get("text")))
            )
            parts.append(where)
        elif kind == "image":
            rest.parts.append(_image(where, b))
            parts.append(where)
        elif kind == "tool_use" and role == "assistant":
            calls.append(where)
            rest.tool_calls.append(
                pb.ToolCall(
                    id=text(f"{where}.id", b.get("id")),
                    name=text(f"{where}.name", b.get("name")),
                    arguments=_object_text(f"{where}.input", b.get("input", {})),
                )
            )
        elif kind == "tool_result" and role == "user":
            out.append(_tool_result(where, b, names))
        else:
            raise InvalidArgument(
                f"{where}.type",
                "unsupported block (text, image; tool_use in assistant turns, tool_result in "
                "user turns)",
            )
    content_field = f"{field}.content"
    if len(rest.parts) == 1 and rest.parts[0].type == "text":  # the common case: plain text
        rest.content = rest.parts.pop().text
        content_field = f"{parts.pop()}.text"
    if rest.content or rest.parts or rest.tool_calls or not out:
        out.append(rest)
        names.add(Origin(field, content_field, "", f"{field}.content", parts, calls))
    return out


def _image(field: str, block: dict[str, Any]) -> pb.ContentPart:
    source = obj(f"{field}.source", block.get("source"))
    kind = source.get("type")
    if kind == "url":
        return pb.ContentPart(
            type="image", image_url=text(f"{field}.source.url", source.get("url"))
        )
    if kind != "base64":
        raise InvalidArgument(f"{field}.source.type", "must be base64 or url")
    data = text(f"{field}.source.data", source.get("data"))
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidArgument(f"{field}.source.data", "is not valid base64") from None
    media = text(f"{field}.source.media_type", source.get("media_type"))
    return pb.ContentPart(type="image", image_data=raw, media_type=media)


def _tool_result(field: str, block: dict[str, Any], names: Names) -> pb.Message:
    """A tool_result block as a tool message: its texts joined, its images as parts."""
    out = pb.Message(
        role="tool", tool_call_id=text(f"{field}.tool_use_id", block.get("tool_use_id"))
    )
    content = block.get("content", "")
    texts = []
    images: list[str] = []  # the block behind each image part
    if isinstance(content, str):
        texts.append(content)
    else:
        for k, part in enumerate(_blocks(f"{field}.content", content)):
            p = obj(f"{field}.content[{k}]", part)
            if p.get("type") == "text":
                texts.append(text(f"{field}.content[{k}].text", p.get("text")))
            elif p.get("type") == "image":
                out.parts.append(_image(f"{field}.content[{k}]", p))
                images.append(f"{field}.content[{k}]")
            else:
                raise InvalidArgument(f"{field}.content[{k}].type", "must be text or image")
    names.add(Origin(field, f"{field}.content", f"{field}.tool_use_id", f"{field}.content", images))
    is_error = block.get("is_error")
    if is_error is not None and boolean(f"{field}.is_error", is_error):
        texts.insert(0, "Error:")
    out.content = "\n".join(texts)
    return out


def _tool(field: str, value: Any) -> pb.Tool:
    t = obj(field, value)
    if t.get("type") not in (None, "custom"):
        raise InvalidArgument(f"{field}.type", "server tools are not supported (custom tools only)")
    schema = t.get("input_schema")
    if schema is not None:
        schema = _object_text(f"{field}.input_schema", schema)
    return pb.Tool(
        name=text(f"{field}.name", t.get("name")),
        description=text(f"{field}.description", t.get("description", "")),
        parameters=schema or "",
    )


def _tool_choice(msg: pb.GenerateRequest, choice: dict[str, Any]) -> None:
    kind = choice.get("type")
    if kind not in CHOICES:
        raise InvalidArgument("tool_choice.type", "must be auto, any, tool or none")
    if kind in ("any", "tool") and not msg.tools:  # the tools are read first
        raise InvalidArgument("tool_choice.type", f"{kind} needs at least one tool in `tools`")
    msg.tool_choice.mode = CHOICES[kind]
    if kind == "tool":
        msg.tool_choice.name = text("tool_choice.name", choice.get("name"))
    disable = choice.get("disable_parallel_tool_use")
    if disable is not None and boolean("tool_choice.disable_parallel_tool_use", disable):
        msg.parallel_tool_calls = False
