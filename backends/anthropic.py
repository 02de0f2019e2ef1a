"""Remote-API backend: Anthropic's Messages API, natively (`POST {base_url}/v1/messages`).

Requests are translated as backends/anthropic_messages.py says (system, turns, tools,
tool_choice, tool_use / tool_result blocks, images, stop sequences, top_p; seed dropped; JSON
response formats by a forced answer tool); streams are parsed as backends/anthropic_stream.py
says (text, tool_use blocks as tool-call fragments, usage, stop reasons, error events).

`probe()` GETs `{base_url}/v1/models` (with the key when `api_key_env` is set; a missing variable
fails the probe, since no request could succeed either). Any answer below 500 other than 401, 403
and 429 counts as healthy, so gateways without a models endpoint (404) still pass.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Literal

from pydantic import Field

from backends.anthropic_messages import anthropic_fields, to_anthropic
from backends.anthropic_stream import AnthropicStream, map_stop_reason
from backends.delta_batch import DeltaBatch
from backends.http_backend import HttpBackend, json_body
from backends.http_common import TokenClock, api_key, parse_json, status_error, transport_error
from backends.http_stream import get_bounded, open_stream
from backends.wire import WireError
from router.core.backend import Finish, Load, StreamEvent
from router.core.backend_config import Feature, HttpBackendCommon
from router.core.errors import BackendUnavailable
from router.core.estimates import prompt_tokens_estimate
from router.core.types import Request, Tier

__all__ = ["AnthropicBackend", "AnthropicConfig", "map_stop_reason", "to_anthropic"]


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
            fields, answer_tool = anthropic_fields(request)
            body: dict[str, Any] = {
                "model": self.config.upstream_model or self.config.model,
                **fields,
                "max_tokens": request.max_tokens,
                "stream": True,
            }
            clock = TokenClock(self.name, self.config.timeouts)
            stream = AnthropicStream(self.name, answer_tool, key)
            out = DeltaBatch()
            deltas, done = 0, False
            path = f"{self.base_path}/v1/messages"
            async with open_stream(
                self._http(), path, self._headers(key), json_body(body), clock, key
            ) as events:
                while not (stream.stopped or done) and (batch := await events.batch()) is not None:
                    failed: BackendUnavailable | None = None  # raised after the deltas before it
                    for event, data in batch:
                        if data == "[DONE]":  # not how Anthropic ends a stream: incomplete
                            done = True
                            break
                        try:
                            stream.feed(event, parse_json(self.name, data, key), out)
                        except BackendUnavailable as exc:
                            failed = exc
                            break
                        if stream.stopped:
                            break
                    if out.pieces:
                        n = out.pieces
                        deltas += n
                        for delta in out.take():
                            yield delta
                        clock.tick(n)
                    if failed is not None:
                        raise failed
                if stream.stopped:
                    await events.drain()
            if not stream.stopped:
                raise BackendUnavailable(
                    self.name, f"stream closed before completion (after {deltas} deltas)"
                )
            yield Finish(
                stream.prompt if stream.prompt is not None else prompt_tokens_estimate(request),
                stream.completion if stream.completion is not None else deltas,
                stream.finish,
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
