"""The OpenAI Chat Completions face: `POST /v1/chat/completions` and `GET /v1/models`.

Requests are read by router/http/openai_request.py. Answers follow the API reference: a
`chat.completion` object, or `chat.completion.chunk` events (`data: {...}`): the first with the
assistant role, content and tool-call deltas (a call's first fragment with its id, type and
name), the finish chunk, with `stream_options.include_usage` a chunk of empty choices and the
usage (`usage: null` on the others), then `data: [DONE]`. A failure after the stream began is a
`data: {"error": {...}}` event and no [DONE] (the SDKs raise APIError on it). The decision is the
`tokenrouter` field of the first and last chunk and of the whole answer; `system_fingerprint` is
the config version. Each chunk's fixed head is encoded once per request.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from router.core.backend import TextDelta
from router.core.types import Decision, Usage
from router.http import openai_request
from router.http.decision import decision_fields
from router.http.face import Parsed
from router.runtime.engine import Router

FINISH = {"stop": "stop", "length": "length", "tool_calls": "tool_calls", "cancelled": "stop"}
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}
ERROR_CODES = {401: "invalid_api_key", 413: "request_too_large", 429: "rate_limit_exceeded"}


def error_object(status: int, message: str, param: str | None) -> dict[str, Any]:
    code = ERROR_CODES.get(status)
    if status == 404:
        code = "model_not_found" if param == "model" else "not_found"
    kind = ERROR_TYPES.get(status, "api_error")
    return {"message": message, "type": kind, "param": param, "code": code}


def _usage(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
    }


def _tool_deltas(event: TextDelta, seen: set[int]) -> list[dict[str, Any]]:
    out = []
    for call in event.tool_calls:
        entry: dict[str, Any] = {"index": call.index}
        function: dict[str, Any] = {"arguments": call.arguments}
        if call.index not in seen:  # the first fragment of a call names it
            seen.add(call.index)
            entry["id"] = call.id
            entry["type"] = "function"
            function["name"] = call.name
        entry["function"] = function
        out.append(entry)
    return out


class ChunkEncoder:
    """The SSE events of one streamed answer."""

    def __init__(self, parsed: Parsed, request_id: str) -> None:
        self._include_usage = parsed.options.include_usage
        self._id = f"chatcmpl-{request_id}"
        self._created = int(time.time())
        self._seen: set[int] = set()
        self._head = b""
        self._tail = b',"logprobs":null,"finish_reason":null}]'
        self._tail += b',"usage":null}\n\n' if self._include_usage else b"}\n\n"

    def _chunk(self, decision: Decision, choices: list, **extra: Any) -> bytes:
        chunk = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": decision.model,
            "system_fingerprint": decision.config_version,
            "choices": choices,
            **extra,
        }
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    def start(self, decision: Decision) -> bytes:
        self._decision = decision
        head = self._chunk(decision, [])
        self._head = head[: head.index(b'"choices":[')] + b'"choices":[{"index":0,"delta":'
        delta = {"role": "assistant", "content": ""}
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}
        extra: dict[str, Any] = {"tokenrouter": decision_fields(decision)}
        if self._include_usage:
            extra["usage"] = None
        return self._chunk(decision, [choice], **extra)

    def delta(self, event: TextDelta) -> bytes:
        delta: dict[str, Any] = {"content": event.text} if event.text else {}
        if event.tool_calls:
            delta["tool_calls"] = _tool_deltas(event, self._seen)
        return self._head + orjson.dumps(delta) + self._tail

    def finish(self, usage: Usage) -> bytes:
        d = self._decision
        reason = FINISH.get(usage.finish_reason, "stop")
        choice = {"index": 0, "delta": {}, "logprobs": None, "finish_reason": reason}
        fields = {"tokenrouter": decision_fields(d, usage)}
        if self._include_usage:
            out = self._chunk(d, [choice], usage=None)
            out += self._chunk(d, [], usage=_usage(usage), **fields)
        else:
            out = self._chunk(d, [choice], **fields)
        return out + b"data: [DONE]\n\n"

    def error(self, status: int, message: str) -> bytes:
        return b"data: " + orjson.dumps({"error": error_object(status, message, None)}) + b"\n\n"


class Collector:
    """The text and tool calls of one non-streaming answer."""

    def __init__(self, parsed: Parsed, request_id: str) -> None:
        self._id = f"chatcmpl-{request_id}"
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
        text = "".join(self._text)
        message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
        if self._calls:
            message["content"] = text or None
            message["tool_calls"] = [
                {
                    "id": c[0],
                    "type": "function",
                    "function": {"name": c[1], "arguments": "".join(c[2:])},
                }
                for _, c in sorted(self._calls.items())
            ]
        reason = FINISH.get(usage.finish_reason, "stop")
        return orjson.dumps(
            {
                "id": self._id,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": decision.model,
                "system_fingerprint": decision.config_version,
                "choices": [
                    {"index": 0, "message": message, "logprobs": None, "finish_reason": reason}
                ],
                "usage": _usage(usage),
                "tokenrouter": decision_fields(decision, usage),
            }
        )


class OpenAIFace:
    """Chat Completions (see the module docstring)."""

    name = "openai"

    def parse(self, body: Any) -> Parsed:
        return openai_request.parse(body)

    def encoder(self, parsed: Parsed, request_id: str) -> ChunkEncoder:
        return ChunkEncoder(parsed, request_id)

    def collector(self, parsed: Parsed, request_id: str) -> Collector:
        return Collector(parsed, request_id)

    def error_body(self, status: int, message: str, param: str | None) -> bytes:
        return orjson.dumps({"error": error_object(status, message, param)})


def models_body(router: Router) -> bytes:
    """`GET /v1/models`: `auto` (the router decides), then every configured model and alias."""
    created = int(router.runtime.loaded_at)
    names = ["auto"]
    for backend in router.config.backends.values():
        for name in (backend.model, *backend.aliases):
            if name not in names:
                names.append(name)
    data = [
        {"id": n, "object": "model", "created": created, "owned_by": "tokenrouter"} for n in names
    ]
    return orjson.dumps({"object": "list", "data": data})
