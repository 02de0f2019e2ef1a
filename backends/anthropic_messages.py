"""A Request as an Anthropic Messages API body, translated as that API documents.

* System messages are joined (blank lines between) into the top-level `system` text; images
  there are refused (InvalidArgument naming the part), as `system` takes text only.
* The other messages become user and assistant turns; consecutive turns of one role are merged
  (the API wants alternating roles). A turn that is all text keeps `content` a string, its
  pieces joined once by blank lines (linear time); any other turn is a list of blocks:
  `{type: text}` (empty texts are left out: the API refuses them), images as `{type: image,
  source: {type: base64, media_type, data}}` (bytes, or a base64 data: URL) or `{type: image,
  source: {type: url, url}}`, an assistant's tool calls as `{type: tool_use, id, name, input}`
  (the arguments parsed), and a tool message (one with a `tool_call_id`) as a user block
  `{type: tool_result, tool_use_id, content}` (its text, or text and image blocks). Tool
  results come first in their user turn, as the API requires. A tool message without a
  `tool_call_id` is plain user text.
* Tools are `{name, description, input_schema}`. `tool_choice`: auto -> `{type: auto}`,
  required -> `{type: any}`, a named tool -> `{type: tool, name}`, none -> `{type: none}`;
  `parallel_tool_calls: false` adds `disable_parallel_tool_use: true` to it.
* `stop` -> `stop_sequences`, `top_p` as is, temperature clamped to [0, 1]. `seed`: the API
  has none, so it is dropped.
* `response_format`: the API has none. JSON output is asked for with a forced tool: a synthetic
  tool named after the schema (`response_format.name`; `json_object` offers one taking any
  object) that the model must call (`tool_choice {type: tool}`; `{type: any}` when the request
  also offers tools under auto or required, so it may call those instead). The stream parser
  (backends/anthropic_stream.py) relays that tool's input as text, the JSON answer, with finish
  reason "stop". The API takes only object schemas as a tool's input, so another schema is
  refused (InvalidArgument on `response_format.schema`).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from router.core.errors import InvalidArgument
from router.core.types import ChatMessage, ContentPart, Request

ANY_OBJECT = {"type": "object"}
ANSWER_DESCRIPTION = "Give your answer: call this tool with the answer as its input."


def image_block(part: ContentPart) -> dict[str, Any]:
    """An image part as an Anthropic image block (base64 bytes or data: URL, or a URL)."""
    if part.data:
        data = base64.b64encode(part.data).decode("ascii")
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": part.media_type, "data": data},
        }
    url = part.url
    if url.startswith("data:"):
        head, _, data = url.partition(",")
        media_type = head[5:].split(";", 1)[0]
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }
    return {"type": "image", "source": {"type": "url", "url": url}}


def _blocks(m: ChatMessage) -> list[dict[str, Any]]:
    """The text and image blocks of a message (empty texts left out)."""
    blocks = [{"type": "text", "text": m.content}] if m.content else []
    for p in m.parts:
        if p.type == "image":
            blocks.append(image_block(p))
        elif p.text:
            blocks.append({"type": "text", "text": p.text})
    return blocks


def _turn_content(m: ChatMessage) -> str | list[dict[str, Any]]:
    """What a message adds to its turn: its text, or its blocks."""
    if m.role == "tool" and m.tool_call_id:
        images = any(p.type == "image" for p in m.parts)
        content: str | list[dict[str, Any]] = _blocks(m) if images else m.text
        return [{"type": "tool_result", "tool_use_id": m.tool_call_id, "content": content}]
    if m.role == "assistant" and m.tool_calls:
        blocks = [{"type": "text", "text": m.text}] if m.text else []
        for c in m.tool_calls:
            blocks.append(
                {"type": "tool_use", "id": c.id, "name": c.name, "input": json.loads(c.arguments)}
            )
        return blocks
    if m.images:
        return _blocks(m)
    return m.text


def to_anthropic(messages: Sequence[ChatMessage]) -> tuple[str, list[dict[str, Any]]]:
    """(system, messages) for the Messages API; see the module docstring for the mapping."""
    system: list[str] = []
    merged: list[tuple[str, list[str | list[dict[str, Any]]]]] = []  # (role, pieces)
    for i, m in enumerate(messages):
        if m.role == "system":
            for j, p in enumerate(m.parts):
                if p.type == "image":
                    reason = "Anthropic's system prompt takes text only, not images"
                    raise InvalidArgument(f"messages[{i}].parts[{j}]", reason)
            system.append(m.text)
            continue
        role = "assistant" if m.role == "assistant" else "user"
        piece = _turn_content(m)
        if merged and merged[-1][0] == role:
            merged[-1][1].append(piece)
        else:
            merged.append((role, [piece]))
    return "\n\n".join(system), [_turn(role, pieces) for role, pieces in merged]


def _turn(role: str, pieces: list[str | list[dict[str, Any]]]) -> dict[str, Any]:
    if all(isinstance(p, str) for p in pieces):
        return {"role": role, "content": "\n\n".join(pieces)}  # type: ignore[arg-type]
    results: list[dict[str, Any]] = []
    blocks: list[dict[str, Any]] = []
    for piece in pieces:
        if isinstance(piece, str):
            if piece:
                blocks.append({"type": "text", "text": piece})
            continue
        for block in piece:
            (results if block["type"] == "tool_result" else blocks).append(block)
    return {"role": role, "content": results + blocks}


def answer_tool_name(request: Request) -> str:
    """The synthetic tool's name for a JSON response format: the format's name, made distinct
    from the offered tools' names."""
    name = request.response_format.name or "response"
    taken = {t.name for t in request.tools}
    while name in taken:
        name = ("answer_" + name)[:64]
    return name


def tool_fields(request: Request) -> tuple[dict[str, Any], str | None]:
    """(`tools` and `tool_choice` fields, the synthetic answer tool's name or None)."""
    fields: dict[str, Any] = {}
    tools = [
        {
            "name": t.name,
            **({"description": t.description} if t.description else {}),
            "input_schema": json.loads(t.parameters),
        }
        for t in request.tools
    ]
    choice = request.tool_choice
    answer = None
    fmt = request.response_format
    if fmt.type in ("json_object", "json_schema"):
        schema = json.loads(fmt.schema) if fmt.type == "json_schema" and fmt.schema else ANY_OBJECT
        if not isinstance(schema, dict) or schema.get("type", "object") != "object":
            reason = "Anthropic backends take JSON output only for an object schema"
            raise InvalidArgument("response_format.schema", reason)
        answer = answer_tool_name(request)
        offered = tools if choice.mode != "none" else []
        tools = [
            *offered,
            {"name": answer, "description": ANSWER_DESCRIPTION, "input_schema": schema},
        ]
        if choice.mode == "tool":
            tool_choice: dict[str, Any] = {"type": "tool", "name": choice.name}
        elif offered:
            tool_choice = {"type": "any"}
        else:
            tool_choice = {"type": "tool", "name": answer}
    elif tools:
        kinds = {"auto": "auto", "required": "any", "none": "none", "tool": "tool"}
        tool_choice = {"type": kinds.get(choice.mode, "auto")}
        if choice.mode == "tool":
            tool_choice["name"] = choice.name
    else:
        return fields, None
    if request.parallel_tool_calls is False and tool_choice["type"] != "none":
        tool_choice["disable_parallel_tool_use"] = True
    fields["tools"] = tools
    fields["tool_choice"] = tool_choice
    return fields, answer


def anthropic_fields(request: Request) -> tuple[dict[str, Any], str | None]:
    """(the body fields of `request` beside model, max_tokens and streaming, the synthetic
    answer tool's name or None)."""
    system, turns = to_anthropic(request.messages)
    body: dict[str, Any] = {"messages": turns}
    if system:
        body["system"] = system
    tools, answer = tool_fields(request)
    body.update(tools)
    if request.stop:
        body["stop_sequences"] = list(request.stop)
    body["temperature"] = min(max(request.temperature, 0.0), 1.0)
    if request.top_p is not None:
        body["top_p"] = request.top_p
    return body, answer
