"""Cloud-GPU / remote backend: any OpenAI-compatible chat-completions server (vLLM, TGI, SGLang,
llama.cpp's llama-server, llama-cpp-python's server, OpenAI itself).

Streams `POST {base_url}/chat/completions` with `stream_options.include_usage`; usage comes from
the final usage chunk when the server sends one, else completion tokens are the content chunks and
prompt tokens are estimated (llama-cpp-python's server, for one, ignores `stream_options`).
Each content chunk counts as one completion token as it arrives (vLLM and llama.cpp's server send
one token a chunk), so a stream that ends early is charged the chunks it delivered.

The request body carries the agent fields as backends/openai_messages.py translates them (per
the config's `dialect`: `openai`, or `llama_cpp_python` for llama-cpp-python's server).
Streamed tool calls (`choices[0].delta.tool_calls[i]`: `{index, id, function: {name,
arguments}}`) are relayed as ToolCallDelta fragments: the first fragment of a call carries its
id and name (an id the server left out is made up, `call_<request id>_<index>`; an id or name
repeated on later fragments is not relayed again), later ones its argument pieces. Each chunk,
text or tool call, counts as one completion token.

Finish reasons: "stop", "eos" -> "stop"; "tool_calls" and the legacy "function_call" ->
"tool_calls"; "length" -> "length"; anything else (e.g. "content_filter") is passed on as the
server sent it. A stream must carry a
finish_reason: one that ends without one (even with `data: [DONE]`, which is how
llama-cpp-python's server ends a stream it interrupted for a newer request) is an error.

`probe()` reads load signals according to `metrics`:

* "vllm": `{root}/metrics` (Prometheus text), summing `vllm:num_requests_waiting`,
  `vllm:num_requests_running` and `vllm:gpu_cache_usage_perc` (or `vllm:kv_cache_usage_perc`)
  over all label sets;
* "llamacpp": `{root}/health` (llama-server: 200 = ready, 503 = loading); a 404 there (as from
  llama-cpp-python's server, which has no /health) falls back to `{base_url}/models`; then
  `{root}/slots` when offered (404/501 are tolerated) for running requests and slot count;
* "auto": vLLM metrics, falling back to `{base_url}/models` when /metrics is not offered;
* "none": `{base_url}/models`.

`root` is `base_url` without a trailing `/v1`. The last readings stay in `self.metrics`
(keys: waiting, running, kv_cache_usage, slots) with the time of reading in `self.metrics_at`.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator, Container
from typing import Any, Literal

from pydantic import Field

from backends.delta_batch import DeltaBatch
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
from backends.http_stream import Answer, get_bounded, open_stream
from backends.openai_messages import Dialect, openai_fields
from backends.wire import WireError
from router.core.backend import Finish, Load, StreamEvent, ToolCallDelta
from router.core.backend_config import Feature, HttpBackendCommon
from router.core.errors import BackendUnavailable
from router.core.estimates import prompt_tokens_estimate
from router.core.types import Request, Tier

_FINISH = {"stop": "stop", "eos": "stop", "tool_calls": "tool_calls", "function_call": "tool_calls"}
_VLLM = {
    "vllm:num_requests_waiting": "waiting",
    "vllm:num_requests_running": "running",
    "vllm:gpu_cache_usage_perc": "kv_cache_usage",
    "vllm:kv_cache_usage_perc": "kv_cache_usage",
}


def map_finish_reason(reason: str) -> str:
    """An OpenAI finish_reason in the router's terms (see the module docstring)."""
    return "length" if reason == "length" else _FINISH.get(reason, reason)


def parse_vllm_metrics(text: str) -> dict[str, float]:
    """vLLM load gauges from Prometheus text, summed over label sets; absent ones are left out."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        key = _VLLM.get(name)
        if key is None:
            continue
        rest = line.rsplit("}", 1)[1] if "{" in line else line.split(None, 1)[-1]
        try:
            value = float(rest.split()[0])  # a timestamp may follow the value
        except (IndexError, ValueError):
            continue
        found[key] = found.get(key, 0.0) + value
    return found


class OpenAIConfig(HttpBackendCommon):
    """Any OpenAI-compatible chat completions server (vLLM, TGI, SGLang, llama.cpp, OpenAI)."""

    type: Literal["openai"]
    tier: Tier = Tier.CLOUD_GPU
    metrics: Literal["auto", "vllm", "llamacpp", "none"] = Field(
        "auto", description="where to read load signals from"
    )
    dialect: Dialect = Field(
        "openai",
        description="the request shape: openai, or llama_cpp_python for llama-cpp-python's "
        "server (JSON Schemas as json_object with a schema; `required` with one tool as its "
        "named choice)",
    )
    # vLLM, SGLang, TGI and llama.cpp's server take tools and response formats; images depend on
    # the model, so `vision` is for the operator to list.
    features: list[Feature] = Field(
        default_factory=lambda: ["streaming", "tools", "json_mode", "json_schema"]
    )


class OpenAICompatBackend(HttpBackend):
    """Streams chat completions from an OpenAI-compatible server; see the module docstring."""

    config_model = OpenAIConfig
    config: OpenAIConfig

    def __init__(self, name: str, config: OpenAIConfig) -> None:
        super().__init__(name, config)
        self.root_path = self.base_path.removesuffix("/v1")  # where /metrics, /health live
        self.metrics_at = 0.0

    def _headers(self, key: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"} if key else {}

    async def generate(self, request: Request) -> AsyncIterator[StreamEvent]:
        """Chunks that arrived together are relayed as few TextDeltas as their order allows
        (backends/delta_batch.py), so what the upstream sends faster than the router relays
        it costs one trip."""
        with self._limit.slot():
            key = api_key(self.name, self.config.api_key_env)
            body = {
                "model": self.config.upstream_model or self.config.model,
                **openai_fields(request, self.config.dialect),
                "max_tokens": request.max_tokens,
                "temperature": request.temperature,
                "stream": True,
                "stream_options": {"include_usage": True},
            }
            clock = TokenClock(self.name, self.config.timeouts)
            chunks, finish, usage, done = 0, "", None, False
            calls = _ToolCalls(request.request_id)
            out = DeltaBatch()
            path = f"{self.base_path}/chat/completions"
            async with open_stream(
                self._http(), path, self._headers(key), json_body(body), clock, key
            ) as events:
                while not done and (batch := await events.batch()) is not None:
                    failed: BackendUnavailable | None = None  # raised after the deltas before it
                    for _, data in batch:
                        if data == "[DONE]":
                            done = True
                            break
                        try:
                            chunk = parse_json(self.name, data, key)
                        except BackendUnavailable as exc:
                            failed = exc
                            break
                        if isinstance(chunk.get("error"), dict | str):
                            failed = BackendUnavailable(self.name, self._stream_error(chunk, key))
                            break
                        usage = field(chunk, "usage") or usage
                        choices = chunk.get("choices")
                        choice = choices[0] if isinstance(choices, list) and choices else {}
                        delta = field(choice, "delta")
                        text = delta.get("content")
                        if isinstance(text, str) and text:
                            out.text(text)
                        fragments = delta.get("tool_calls")
                        if isinstance(fragments, list) and fragments:
                            calls.feed(fragments, out)
                        if isinstance(choice, dict) and choice.get("finish_reason"):
                            finish = map_finish_reason(str(choice["finish_reason"]))
                    if out.pieces:
                        n = out.pieces
                        chunks += n
                        for event in out.take():
                            yield event
                        clock.tick(n)
                    if failed is not None:
                        raise failed
                if done:
                    await events.drain()
            if not finish:  # [DONE] alone: llama-cpp-python ends interrupted streams so
                what = "[DONE] without a finish_reason" if done else "stream closed"
                reason = f"{what} before completion (after {chunks} chunks)"
                raise BackendUnavailable(self.name, reason)
            prompt = _count(usage, "prompt_tokens")
            completion = _count(usage, "completion_tokens")
            yield Finish(
                prompt if prompt is not None else prompt_tokens_estimate(request),
                completion if completion is not None else chunks,
                finish or "stop",
            )

    @staticmethod
    def _stream_error(chunk: dict[str, Any], key: str | None) -> str:
        err = chunk["error"]
        if isinstance(err, dict):
            err = ": ".join(str(err[k]) for k in ("type", "message") if err.get(k))
        return redact(f"error in stream: {err}"[:300], key)

    async def probe(self) -> Load:
        key = api_key(self.name, self.config.api_key_env)
        mode = self.config.metrics
        if mode in ("vllm", "auto"):
            # auto: any status means "no metrics here"; only an unreachable server fails now.
            ok = (404,) if mode == "vllm" else range(300, 600)
            response = await self._get(f"{self.root_path}/metrics", key, ok=ok)
            found = parse_vllm_metrics(response.text) if response.status == 200 else {}
            if found or mode == "vllm":
                if response.status != 200:
                    reason = f"no vLLM metrics at {response.url} (HTTP {response.status})"
                    raise BackendUnavailable(self.name, reason)
                self._remember(found)
                return self.load()
        elif mode == "llamacpp":
            health = await self._get(f"{self.root_path}/health", key, ok=(404,))
            found = {}
            with contextlib.suppress(ValueError, RecursionError):
                doc = json.loads(health.content)
                if isinstance(doc, dict) and "slots_processing" in doc:  # older llama-server
                    found["running"] = float(doc["slots_processing"])
            slots = await self._get(f"{self.root_path}/slots", key, ok=(404, 501))
            if slots.status == 200:
                with contextlib.suppress(ValueError, RecursionError):
                    found.update(_slot_metrics(json.loads(slots.content)))
            if health.status == 200:
                self._remember(found)
                return self.load()
        await self._get(f"{self.base_path}/models", key)
        self._remember({})
        return self.load()

    def _remember(self, found: dict[str, float]) -> None:
        self.metrics = found
        self.metrics_at = time.time()

    async def _get(self, path: str, key: str | None, ok: Container[int] = ()) -> Answer:
        """GETs `path`; a transport failure or a non-2xx status not in `ok` raises
        BackendUnavailable."""
        pool = self._http()
        try:
            response = await get_bounded(
                pool, path, self.name, self._headers(key), 2 * self.config.timeouts.connect_s
            )
        except TimeoutError:
            raise BackendUnavailable(self.name, f"probe of {pool.url(path)} timed out") from None
        except WireError as exc:
            raise transport_error(self.name, exc, key) from None
        if not 200 <= response.status < 300 and response.status not in ok:
            err = status_error(self.name, response.status, response.headers, response.content, key)
            reason = getattr(err, "reason", str(err))
            raise BackendUnavailable(self.name, f"probe of {response.url}: {reason}")
        return response


class _ToolCalls:
    """The tool calls of one stream, by index: which have been announced (id and name)."""

    __slots__ = ("_request_id", "_seen")

    def __init__(self, request_id: str) -> None:
        self._request_id = request_id
        self._seen: set[int] = set()

    def feed(self, fragments: list[Any], out: DeltaBatch) -> None:
        """Adds the ToolCallDeltas of one chunk's `delta.tool_calls` to `out`."""
        for position, item in enumerate(fragments):
            if not isinstance(item, dict):
                continue
            index = item.get("index", position)
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < 1024:
                index = position
            function = field(item, "function")
            arguments = function.get("arguments")
            arguments = arguments if isinstance(arguments, str) else ""
            if index in self._seen:
                if arguments:
                    out.call(ToolCallDelta(index, "", "", arguments))
                continue
            self._seen.add(index)
            call_id = item.get("id")
            if not isinstance(call_id, str) or not call_id:
                call_id = f"call_{self._request_id[:24]}_{index}"
            name = function.get("name")
            out.call(
                ToolCallDelta(index, call_id, name if isinstance(name, str) else "", arguments)
            )


def _count(usage: dict[str, Any] | None, name: str) -> int | None:
    return token_count((usage or {}).get(name))


def _slot_metrics(doc: Any) -> dict[str, float]:
    """Running requests and slot count from llama-server's /slots (old `state` or new field)."""
    if not isinstance(doc, list):
        return {}
    busy = 0
    for slot in doc:
        if isinstance(slot, dict):
            busy += bool(slot.get("is_processing", slot.get("state", 0)))
    return {"running": float(busy), "slots": float(len(doc))}
