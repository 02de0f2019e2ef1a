"""The events of an Anthropic Messages stream, as text and tool-call fragments: `AnthropicStream`.

* `message_start`: prompt tokens (usage.input_tokens plus cache creation and read tokens).
* `content_block_start` of a `tool_use` block: a ToolCallDelta(index, id, name, "") where the
  index is the block's position among the tool_use blocks (0, 1, ...), not its block index.
* `content_block_delta`: a `text_delta` is text; an `input_json_delta`'s `partial_json` is an
  arguments fragment of its block's call. Other deltas (thinking, signatures, server tools)
  are not relayed.
* the synthetic answer tool of a JSON response format (backends/anthropic_messages.py): its
  input is relayed as text (the JSON answer), not as a call.
* `message_delta`: cumulative usage.output_tokens and the stop_reason: end_turn and
  stop_sequence -> "stop", max_tokens -> "length", tool_use -> "tool_calls" (but "stop" when
  only the answer tool was called), others passed on.
* `message_stop`: the end; `ping`: ignored; `error` -> BackendUnavailable "error event: <type>:
  <message>" (every error type, `overloaded_error` included, so the router may retry
  elsewhere).

Exact output tokens come only at the end, so each text piece or fragment carries an estimate
(router.core.estimates.completion_tokens_estimate) that a stream ending early is charged.
"""

from __future__ import annotations

from typing import Any

from backends.delta_batch import DeltaBatch
from backends.http_common import field, redact, token_count
from router.core.backend import ToolCallDelta
from router.core.errors import BackendUnavailable
from router.core.estimates import completion_tokens_estimate

_STOP = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
}
_ANSWER = -1  # the block of the synthetic answer tool


def map_stop_reason(reason: str) -> str:
    """An Anthropic stop_reason in the router's terms (see the module docstring)."""
    return _STOP.get(reason, reason)


class AnthropicStream:
    """The state of one stream; `feed` each event, read the counts and finish at the end."""

    __slots__ = (
        "_answer",
        "_blocks",
        "_calls",
        "backend",
        "completion",
        "prompt",
        "reason",
        "secret",
        "stopped",
    )

    def __init__(self, backend: str, answer_tool: str | None = None, secret: str | None = None):
        self.backend = backend
        self.secret = secret
        self.prompt: int | None = None
        self.completion: int | None = None
        self.reason = ""  # the stop_reason, as Anthropic sent it
        self.stopped = False  # message_stop came
        self._answer = answer_tool
        self._blocks: dict[Any, int] = {}  # block index -> call index (or _ANSWER)
        self._calls = 0  # real tool calls so far

    @property
    def finish(self) -> str:
        """The finish reason in the router's terms ("stop" before a stop_reason came)."""
        if self.reason == "tool_use" and not self._calls and self._answer:
            return "stop"
        return map_stop_reason(self.reason) if self.reason else "stop"

    def feed(self, event: str, doc: dict[str, Any], out: DeltaBatch) -> None:
        """Handles one event (`doc` its data), adding what it generated to `out`."""
        kind = doc.get("type") or event
        if kind == "content_block_delta":
            delta = field(doc, "delta")
            dtype = delta.get("type")
            if dtype == "text_delta":
                text = delta.get("text")
                if isinstance(text, str) and text:
                    out.text(text, completion_tokens_estimate(text))
            elif dtype == "input_json_delta":
                call = self._blocks.get(_key(doc.get("index")))
                piece = delta.get("partial_json")
                if call is None or not isinstance(piece, str) or not piece:
                    return
                tokens = completion_tokens_estimate(piece)
                if call == _ANSWER:
                    out.text(piece, tokens)
                else:
                    out.call(ToolCallDelta(call, "", "", piece), tokens)
        elif kind == "content_block_start":
            block = field(doc, "content_block")
            if block.get("type") != "tool_use":
                return
            name = block.get("name")
            name = name if isinstance(name, str) else ""
            if self._answer is not None and name == self._answer:
                self._blocks[_key(doc.get("index"))] = _ANSWER
                return
            call = self._calls
            self._calls += 1
            self._blocks[_key(doc.get("index"))] = call
            call_id = block.get("id")
            call_id = call_id if isinstance(call_id, str) else ""
            out.call(ToolCallDelta(call, call_id, name, ""), 1)
        elif kind == "message_start":
            self.prompt = _prompt_tokens(field(doc, "message")) or self.prompt
        elif kind == "message_delta":
            reason = field(doc, "delta").get("stop_reason")
            self.reason = str(reason) if reason else self.reason
            n = token_count(field(doc, "usage").get("output_tokens"))
            self.completion = n if n is not None else self.completion
        elif kind == "message_stop":
            self.stopped = True
        elif kind == "error":
            raise BackendUnavailable(self.backend, _error_reason(doc, self.secret))


def _key(index: Any) -> Any:
    return index if isinstance(index, int | str) and not isinstance(index, bool) else None


def _prompt_tokens(message: dict[str, Any]) -> int | None:
    usage = field(message, "usage")
    fields = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    counts = [n for f in fields if (n := token_count(usage.get(f))) is not None]
    return sum(counts) if counts else None


def _error_reason(doc: dict[str, Any], key: str | None) -> str:
    err = doc.get("error") or {}
    if isinstance(err, dict):
        text = ": ".join(str(err[k]) for k in ("type", "message") if err.get(k))
    else:
        text = str(err)
    return redact(f"error event: {text or 'unknown error'}"[:300], key)
