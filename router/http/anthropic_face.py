"""The Anthropic Messages face: `POST /v1/messages`.

Requests are read by router/http/anthropic_request.py. Answers follow Anthropic's API reference:
a `message` object, or the documented stream — `event: <type>` and `data: {...}` per event:
message_start (an empty message with the input tokens), per content block a
content_block_start, its deltas (text_delta; input_json_delta with partial_json for a
tool_use block) and content_block_stop (a text block closes when a tool call begins; each call
is its own block), then message_delta (stop_reason; the usage with the backend's input and
output token counts, which replace message_start's) and message_stop. A
failure after the stream began is an `event: error` and no message_stop. Stop reasons: stop ->
end_turn, length -> max_tokens, tool_calls -> tool_use; a stop sequence also ends as end_turn
with `stop_sequence: null` (the backends report a stop, not which sequence). The decision is
the `tokenrouter` field of the message (in a stream, of message_start's message).
"""

from __future__ import annotations

from typing import Any

import orjson

from router.core.backend import TextDelta
from router.core.types import Decision, Usage
from router.http import anthropic_request
from router.http.decision import decision_fields
from router.http.face import Parsed

STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    504: "timeout_error",
}


def error_object(status: int, message: str) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": ERROR_TYPES.get(status, "api_error"), "message": message},
    }


def _event(kind: str, data: dict[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _input(arguments: str) -> dict[str, Any]:
    """A tool call's arguments as its `input` object ({} if the model's text is not one)."""
    try:
        value = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


class EventEncoder:
    """The SSE events of one streamed answer."""

    def __init__(self, parsed: Parsed, request_id: str) -> None:
        self._id = f"msg_{request_id}"
        self._index = -1  # the open content block, -1 before the first
        self._open = ""  # its type: "text", "tool_use" or "" when none is open
        self._call = -1  # the tool call (backend index) the open tool_use block carries
        self._text_delta = b""

    def start(self, decision: Decision) -> bytes:
        message = {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "model": decision.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": decision.prompt_tokens, "output_tokens": 0},
            "tokenrouter": decision_fields(decision),
        }
        return _event("message_start", {"type": "message_start", "message": message})

    def _close(self) -> bytes:
        if not self._open:
            return b""
        self._open = ""
        return _event("content_block_stop", {"type": "content_block_stop", "index": self._index})

    def _begin(self, block: dict[str, Any]) -> bytes:
        out = self._close()
        self._index += 1
        self._open = block["type"]
        if self._open == "text":  # the fixed head of this block's text deltas
            self._text_delta = (
                b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,'
                b'"delta":{"type":"text_delta","text":' % self._index
            )
        start = {"type": "content_block_start", "index": self._index, "content_block": block}
        return out + _event("content_block_start", start)

    def delta(self, event: TextDelta) -> bytes:
        out = b""
        if event.text:
            if self._open != "text":
                out += self._begin({"type": "text", "text": ""})
            out += self._text_delta + orjson.dumps(event.text) + b"}}\n\n"
        for call in event.tool_calls:
            if self._open != "tool_use" or call.index != self._call:
                self._call = call.index
                block = {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
                out += self._begin(block)
            if call.arguments:
                delta = {"type": "input_json_delta", "partial_json": call.arguments}
                data = {"type": "content_block_delta", "index": self._index, "delta": delta}
                out += _event("content_block_delta", data)
        return out

    def finish(self, usage: Usage) -> bytes:
        delta = {"stop_reason": STOP.get(usage.finish_reason, "end_turn"), "stop_sequence": None}
        data = {
            "type": "message_delta",
            "delta": delta,
            # cumulative counts: the exact input tokens replace message_start's (the router's
            # count before the backend's), as the API's message_delta usage may
            "usage": {
                "input_tokens": usage.prompt_tokens,
                "output_tokens": usage.completion_tokens,
            },
        }
        out = self._close() + _event("message_delta", data)
        return out + _event("message_stop", {"type": "message_stop"})

    def error(self, status: int, message: str) -> bytes:
        return _event("error", error_object(status, message))


class Collector:
    """The content blocks of one non-streaming answer."""

    def __init__(self, parsed: Parsed, request_id: str) -> None:
        self._id = f"msg_{request_id}"
        self._text: list[str] = []
        self._calls: dict[int, list[str]] = {}  # index -> [id, name, arguments pieces...]

    def delta(self, event: TextDelta) -> None:
        if event.text:
            self._text.append(event.text)
        for call in event.tool_calls:
            entry = self._calls.setdefault(call.index, [call.id, call.name])
            entry[0] = entry[0] or call.id
            entry[1] = entry[1] or call.name
            entry.append(call.arguments)

    def body(self, decision: Decision, usage: Usage) -> bytes:
        content: list[dict[str, Any]] = []
        if text := "".join(self._text):
            content.append({"type": "text", "text": text})
        for _, c in sorted(self._calls.items()):
            content.append(
                {"type": "tool_use", "id": c[0], "name": c[1], "input": _input("".join(c[2:]))}
            )
        return orjson.dumps(
            {
                "id": self._id,
                "type": "message",
                "role": "assistant",
                "model": decision.model,
                "content": content,
                "stop_reason": STOP.get(usage.finish_reason, "end_turn"),
                "stop_sequence": None,
                "usage": {
                    "input_tokens": usage.prompt_tokens,
                    "output_tokens": usage.completion_tokens,
                },
                "tokenrouter": decision_fields(decision, usage),
            }
        )


class AnthropicFace:
    """Messages (see the module docstring)."""

    name = "anthropic"

    def parse(self, body: Any) -> Parsed:
        return anthropic_request.parse(body)

    def encoder(self, parsed: Parsed, request_id: str) -> EventEncoder:
        return EventEncoder(parsed, request_id)

    def collector(self, parsed: Parsed, request_id: str) -> Collector:
        return Collector(parsed, request_id)

    def error_body(self, status: int, message: str, param: str | None) -> bytes:
        return orjson.dumps(error_object(status, message))
