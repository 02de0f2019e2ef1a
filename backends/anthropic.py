"""Remote-API backend: Anthropic's Messages API, natively (`POST {base_url}/v1/messages`).

Messages: system messages are joined into the top-level `system` field; the rest become user and
assistant turns, `tool` messages as user text, consecutive turns of one role merged (the API wants
alternating roles; a turn's parts are joined once, so merging costs linear time). Temperature is
clamped to Anthropic's range [0, 1].

Stream events: `message_start` (usage.input_tokens, plus cache creation/read tokens: all of them
are prompt tokens), `content_block_delta` with a `text_delta` (text), `message_delta` (cumulative
usage.output_tokens; stop_reason end_turn / stop_sequence / tool_use -> "stop", max_tokens ->
"length", others passed on), `message_stop` (the end), `ping` (ignored) and `error`
(-> BackendUnavailable "error event: <type>: <message>"; every error type, `overloaded_error`
included, is BackendUnavailable, so the router may retry elsewhere).

`probe()` GETs `{base_url}/v1/models` (with the key when `api_key_env` is set; a missing variable
fails the probe, since no request could succeed either). Any answer below 500 other than 401, 403
and 429 counts as healthy, so gateways without a models endpoint (404) still pass.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal

from pydantic import Field

from backends.http_backend import HttpBackend, json_body
from backends.http_common import (
    TokenClock,
    api_key,
    field,
    parse_json,
    redact,
    status_error,
    token_count,
    transport_error,
)
from backends.http_stream import get_bounded, open_stream
from backends.wire import WireError
from router.core.backend import Finish, Load, StreamEvent, TextDelta
from router.core.backend_config import Feature, HttpBackendCommon
from router.core.errors import BackendUnavailable
from router.core.estimates import completion_tokens_estimate, prompt_tokens_estimate
from router.core.types import ChatMessage, Request, Tier

_STOP = {"end_turn": "stop", "stop_sequence": "stop", "tool_use": "stop", "max_tokens": "length"}


def map_stop_reason(reason: str) -> str:
    """An Anthropic stop_reason in the router's terms (see the module docstring)."""
    return _STOP.get(reason, reason)


def to_anthropic(messages: Sequence[ChatMessage]) -> tuple[str, list[dict[str, str]]]:
    """(system, messages) for the Messages API; see the module docstring for the mapping."""
    system = [m.content for m in messages if m.role == "system"]
    merged: list[tuple[str, list[str]]] = []  # (role, parts), joined once: linear time
    for m in messages:
        if m.role == "system":
            continue
        role = "assistant" if m.role == "assistant" else "user"
        if merged and merged[-1][0] == role:
            merged[-1][1].append(m.content)
        else:
            merged.append((role, [m.content]))
    turns = [{"role": role, "content": "\n\n".join(parts)} for role, parts in merged]
    return "\n\n".join(system), turns


class AnthropicConfig(HttpBackendCommon):
    """Anthropic's Messages API."""

    type: Literal["anthropic"]
    tier: Tier = Tier.REMOTE_API
    base_url: str = "https://api.anthropic.com"
    api_key_env: str | None = "ANTHROPIC_API_KEY"
    anthropic_version: str = "2023-06-01"
    features: list[Feature] = Field(
        default_factory=lambda: ["streaming", "tools", "json_mode", "json_schema", "vision"]
    )


class AnthropicBackend(HttpBackend):
    """Streams from Anthropic's Messages API; see the module docstring."""

    config_model = AnthropicConfig
    config: AnthropicConfig

    def _headers(self, key: str | None) -> dict[str, str]:
        headers = {"anthropic-version": self.config.anthropic_version}
        if key:
            headers["x-api-key"] = key
        return headers

    async def generate(self, request: Request) -> AsyncIterator[StreamEvent]:
        with self._limit.slot():
            key = api_key(self.name, self.config.api_key_env)
            system, turns = to_anthropic(request.messages)
            body: dict[str, Any] = {
                "model": self.config.upstream_model or self.config.model,
                "messages": turns,
                "max_tokens": request.max_tokens,
                "temperature": min(max(request.temperature, 0.0), 1.0),
                "stream": True,
            }
            if system:
                body["system"] = system
            clock = TokenClock(self.name, self.config.timeouts)
            deltas, prompt, completion, finish, stopped, done = 0, None, None, "", False, False
            path = f"{self.base_path}/v1/messages"
            async with open_stream(
                self._http(), path, self._headers(key), json_body(body), clock, key
            ) as events:
                while not (stopped or done) and (batch := await events.batch()) is not None:
                    texts: list[str] = []
                    failed: BackendUnavailable | None = None  # raised after the texts before it
                    for event, data in batch:
                        if data == "[DONE]":  # not how Anthropic ends a stream: incomplete
                            done = True
                            break
                        try:
                            doc = parse_json(self.name, data, key)
                        except BackendUnavailable as exc:
                            failed = exc
                            break
                        kind = doc.get("type") or event
                        if kind == "message_start":
                            prompt = _prompt_tokens(field(doc, "message")) or prompt
                        elif kind == "content_block_delta":
                            delta = field(doc, "delta")
                            text = delta.get("text") if delta.get("type") == "text_delta" else None
                            if isinstance(text, str) and text:
                                texts.append(text)
                        elif kind == "message_delta":
                            reason = field(doc, "delta").get("stop_reason")
                            finish = map_stop_reason(str(reason)) if reason else finish
                            output = field(doc, "usage").get("output_tokens")
                            n = token_count(output)
                            completion = n if n is not None else completion
                        elif kind == "message_stop":
                            stopped = True
                            break
                        elif kind == "error":
                            failed = BackendUnavailable(self.name, _error_reason(doc, key))
                            break
                    if texts:
                        deltas += len(texts)
                        text = "".join(texts)
                        # Exact output_tokens come only at the end; a stream that ends early is
                        # charged this estimate per delta.
                        yield TextDelta(text, sum(completion_tokens_estimate(t) for t in texts))
                        clock.tick(len(texts))
                    if failed is not None:
                        raise failed
                if stopped:
                    await events.drain()
            if not stopped:
                raise BackendUnavailable(
                    self.name, f"stream closed before completion (after {deltas} deltas)"
                )
            yield Finish(
                prompt if prompt is not None else prompt_tokens_estimate(request),
                completion if completion is not None else deltas,
                finish or "stop",
            )

    async def probe(self) -> Load:
        key = api_key(self.name, self.config.api_key_env)
        path = f"{self.base_path}/v1/models"
        try:
            timeout = 2 * self.config.timeouts.connect_s
            response = await get_bounded(self._http(), path, self.name, self._headers(key), timeout)
        except TimeoutError:
            raise BackendUnavailable(self.name, "probe timed out") from None
        except WireError as exc:
            raise transport_error(self.name, exc, key) from None
        status = response.status
        if status >= 500 or status in (401, 403, 429):
            raise status_error(self.name, status, response.headers, response.content, key)
        return self.load()


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
