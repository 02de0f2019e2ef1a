"""OpenAI Chat Completions answers: the `chat.completion` body, `chat.completion.chunk` events,
and the error object.

Streaming (`data: {...}\\n\\n` per chunk, as OpenAI's API reference documents): the first chunk has
`delta: {role: assistant, content: "", refusal: null}` and the `tokenrouter` decision field; one
chunk per relayed delta (`content`, and `tool_calls` fragments: the first of a call with `index`,
`id`, `type: function` and `function: {name, arguments}`, later ones `index` and
`function.arguments` only); the finish chunk with `finish_reason` (stop, length, tool_calls);
with `stream_options.include_usage` a last chunk with empty `choices` and the `usage` (every
other chunk then carries `usage: null`); then `data: [DONE]`. The last chunk carries the
`tokenrouter` field again, with the cost and times. A failure after the first chunk is a
`data: {"error": {...}}` event and no `[DONE]` (the OpenAI SDK raises APIError on it).

Chunks share one prefix (id `chatcmpl-<request id>`, created, model, system_fingerprint = the
config version), built once when the stream starts, so a token costs one orjson call.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from router.core.backend import TextDelta, ToolCallDelta
from router.core.types import Decision, Usage
from router.http.decision import decision_fields

FINISH_REASONS = ("stop", "length", "tool_calls", "content_filter")
DONE = b"data: [DONE]\n\n"


def error_object(status: int, message: str, param: str | None) -> dict[str, Any]:
    """`{"error": {message, type, param, code}}` with OpenAI's type (and code) for `status`."""
    code: str | None = None
    if status == 401:
        kind, code = "authentication_error", "invalid_api_key"
    elif status == 403:
        kind = "permission_error"
    elif status == 429:
        kind, code = "rate_limit_error", "rate_limit_exceeded"
    elif status == 500:
        kind = "server_error"
    elif status > 500:
        kind = "api_error"
    else:  # 400, 404, 405, 413 and the rest of 4xx
        kind = "invalid_request_error"
        if status == 404:
            code = "model_not_found" if param == "model" else "not_found"
        elif status == 413:
            code = "request_too_large"
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def completion_id(request_id: str) -> str:
    return f"chatcmpl-{request_id}"


def finish_reason(usage: Usage) -> str:
    """The backend's reason in OpenAI's terms (a cancelled generation reads as stop)."""
    reason = usage.finish_reason
    return reason if reason in FINISH_REASONS else "stop"


def usage_object(usage: Usage) -> dict[str, int]:
    prompt, completion = usage.prompt_tokens, usage.completion_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


class ChunkEncoder:
    """One request's `chat.completion.chunk` stream (see the module docstring)."""

    def __init__(self, request_id: str, include_usage: bool) -> None:
        self.request_id = request_id
        self.include_usage = include_usage
        self.created = int(time.time())
        self._decision: Decision | None = None
        self._prefix = self._suffix = b""  # set by start()
        self._end = b'"usage":null}\n\n' if include_usage else b""
        self._seen: set[int] = set()  # tool-call indexes whose first fragment went out

    def _head(self, decision: Decision) -> dict[str, Any]:
        return {
            "id": completion_id(self.request_id),
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": decision.model,
            "system_fingerprint": decision.config_version,
        }

    def start(self, decision: Decision) -> bytes:
        self._decision = decision
        head = orjson.dumps(self._head(decision))
        self._prefix = b"data: " + head[:-1] + b',"choices":[{"index":0,"delta":'
        self._suffix = b',"logprobs":null,"finish_reason":null}]'
        self._suffix += b"," if self.include_usage else b"}\n\n"
        first = {**self._head(decision), "choices": [_choice(_ROLE, None)]}
        if self.include_usage:
            first["usage"] = None
        first["tokenrouter"] = decision_fields(decision)
        return _event(first)

    def delta(self, event: TextDelta) -> bytes:
        delta: dict[str, Any] = {}
        if event.text:
            delta["content"] = event.text
        if event.tool_calls:
            delta["tool_calls"] = self._calls(event.tool_calls)
        if not delta:
            return b""
        return self._prefix + orjson.dumps(delta) + self._suffix + self._end

    def _calls(self, fragments: tuple[ToolCallDelta, ...]) -> list[dict[str, Any]]:
        """The fragments of one delta, one entry per call index (pieces of a call joined)."""
        calls: dict[int, dict[str, Any]] = {}
        for f in fragments:
            entry = calls.get(f.index)
            if entry is None:
                if f.index in self._seen:
                    entry = {"index": f.index, "function": {"arguments": ""}}
                else:
                    self._seen.add(f.index)
                    call_id = f.id or f"call_{self.request_id}_{f.index}"
                    function = {"name": f.name, "arguments": ""}
                    entry = {"index": f.index, "id": call_id, "type": "function"}
                    entry["function"] = function
                calls[f.index] = entry
            entry["function"]["arguments"] += f.arguments
        return list(calls.values())

    def finish(self, usage: Usage) -> bytes:
        decision = self._decision
        assert decision is not None, "finish before start"
        head = self._head(decision)
        done = {**head, "choices": [_choice({}, finish_reason(usage))]}
        if not self.include_usage:
            done["tokenrouter"] = decision_fields(decision, usage)
            return _event(done) + DONE
        done["usage"] = None
        last = {**head, "choices": [], "usage": usage_object(usage)}
        last["tokenrouter"] = decision_fields(decision, usage)
        return _event(done) + _event(last) + DONE

    def error(self, status: int, message: str) -> bytes:
        return _event(error_object(status, message, None))


class CompletionCollector:
    """One request's non-streaming `chat.completion` body."""

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self.created = int(time.time())
        self._text: list[str] = []
        self._calls: dict[int, list[Any]] = {}  # index -> [id, name, argument pieces]

    def delta(self, event: TextDelta) -> None:
        if event.text:
            self._text.append(event.text)
        for f in event.tool_calls:
            call = self._calls.setdefault(f.index, ["", "", []])
            call[0] = call[0] or f.id
            call[1] = call[1] or f.name
            call[2].append(f.arguments)

    def body(self, decision: Decision, usage: Usage) -> bytes:
        text = "".join(self._text)
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if self._calls:
            message["content"] = text or None
            message["tool_calls"] = [
                {
                    "id": call_id or f"call_{self.request_id}_{i}",
                    "type": "function",
                    "function": {"name": name, "arguments": "".join(pieces)},
                }
                for i, (call_id, name, pieces) in sorted(self._calls.items())
            ]
        message["refusal"] = None
        body = {
            "id": completion_id(self.request_id),
            "object": "chat.completion",
            "created": self.created,
            "model": decision.model,
            "choices": [_choice(message, finish_reason(usage), key="message")],
            "usage": usage_object(usage),
            "system_fingerprint": decision.config_version,
            "tokenrouter": decision_fields(decision, usage),
        }
        return orjson.dumps(body)


_ROLE = {"role": "assistant", "content": "", "refusal": None}


def _choice(delta: dict[str, Any], reason: str | None, key: str = "delta") -> dict[str, Any]:
    return {"index": 0, key: delta, "logprobs": None, "finish_reason": reason}


def _event(data: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"
