"""The OpenAI-compatible backend against FakeUpstream: streaming, usage, faults, cancellation."""

from __future__ import annotations

import asyncio
import email.utils
import time
from typing import Any

import pytest

from backends.openai_compat import OpenAICompatBackend, OpenAIConfig
from router.core.backend import Finish, TextDelta
from router.core.errors import BackendUnavailable, InvalidArgument, ResourceExhausted
from router.core.estimates import prompt_tokens_estimate
from router.core.types import ChatMessage, Request
from tests.fakes.fake_upstream import FakeUpstream, Script

FAST = {"first_token_s": 0.3, "between_tokens_s": 0.3, "connect_s": 1.0}  # for timeout tests
RELAXED = {"first_token_s": 5.0, "between_tokens_s": 5.0, "connect_s": 2.0}  # never reached


def make_request(text: str = "Hello!", max_tokens: int = 16) -> Request:
    messages = (ChatMessage("system", "Be brief."), ChatMessage("user", text))
    return Request("r", "t", messages, max_tokens, 0.5)


def make_backend(base_url: str, **fields: Any) -> OpenAICompatBackend:
    fields.setdefault("timeouts", RELAXED)
    return OpenAICompatBackend(
        "gpu", OpenAIConfig(type="openai", model="m", base_url=base_url, **fields)
    )


@pytest.fixture
async def backend(upstream: FakeUpstream):
    b = make_backend(upstream.base_url)
    await b.start()
    yield b
    await b.aclose()


@pytest.fixture
async def fast_backend(upstream: FakeUpstream):
    """A backend with 0.3 s first-token and between-token timeouts."""
    b = make_backend(upstream.base_url, timeouts=FAST)
    yield b
    await b.aclose()


async def collect(backend: OpenAICompatBackend, request: Request | None = None) -> list[Any]:
    return [e async for e in backend.generate(request or make_request())]


async def fails(backend: OpenAICompatBackend, request: Request | None = None) -> BackendUnavailable:
    with pytest.raises(BackendUnavailable) as info:
        await collect(backend, request)
    assert info.value.backend == "gpu"
    return info.value


async def test_streams_text_and_usage_from_the_usage_chunk(upstream, backend):
    """Deltas carry the content chunks, and Finish takes its counts from the final usage chunk."""
    upstream.script(Script(tokens=4, prompt_tokens=21))
    *deltas, finish = await collect(backend)
    assert "".join(d.text for d in deltas) == "t0 t1 t2 t3 "
    assert all(isinstance(d, TextDelta) for d in deltas)
    assert finish == Finish(21, 4, "stop")
    sent = upstream.requests[-1].json
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert sent["model"] == "m" and sent["max_tokens"] == 16 and sent["temperature"] == 0.5
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello!"},
    ]


async def test_counts_chunks_and_estimates_prompt_without_usage(upstream, backend):
    """Without a usage chunk, completion tokens are content chunks and the prompt is estimated."""
    upstream.script(Script(tokens=3, usage=False))
    *_, finish = await collect(backend)
    assert finish == Finish(prompt_tokens_estimate(make_request()), 3, "stop")


@pytest.mark.parametrize(
    ("upstream_reason", "expected"),
    [("length", "length"), ("tool_calls", "tool_calls"), ("content_filter", "content_filter")],
)
async def test_finish_reasons_are_mapped(upstream, backend, upstream_reason, expected):
    """length stays length, tool_calls stays tool_calls, unknown ones pass through."""
    upstream.script(Script(tokens=1, finish=upstream_reason))
    *_, finish = await collect(backend)
    assert finish.finish_reason == expected


async def test_upstream_model_and_extra_headers_are_sent(upstream):
    """`upstream_model` replaces the model name upstream and configured headers go along."""
    b = make_backend(upstream.base_url, upstream_model="org/big", headers={"X-Team": "infra"})
    await collect(b)
    await b.aclose()
    assert upstream.requests[-1].json["model"] == "org/big"
    assert upstream.requests[-1].headers["x-team"] == "infra"


async def test_connection_refused(upstream, backend):
    """A server that does not listen gives BackendUnavailable 'connection refused'."""
    await upstream.refuse()
    assert (await fails(backend)).reason == "connection refused"


async def test_status_500_names_status_and_body(upstream, backend):
    """HTTP 500 gives BackendUnavailable with the status and a snippet of the error body."""
    upstream.script(Script(mode="status", status=500, body='{"error": {"message": "GPU on fire"}}'))
    err = await fails(backend)
    assert err.reason == "HTTP 500: GPU on fire" and err.retry_after_s is None


@pytest.mark.parametrize("header", ["seconds", "http-date"])
async def test_429_carries_retry_after(upstream, backend, header):
    """HTTP 429 gives BackendUnavailable with retry_after_s from Retry-After, seconds or a date."""
    value = "7" if header == "seconds" else email.utils.formatdate(time.time() + 7, usegmt=True)
    upstream.script(Script(mode="status", status=429, retry_after=value))
    err = await fails(backend)
    assert err.reason.startswith("HTTP 429") and err.retry_after_s == pytest.approx(7, abs=1.1)


@pytest.mark.parametrize("status", [400, 413, 422])
async def test_bad_request_statuses_are_invalid_argument(upstream, backend, status):
    """400, 413 and 422 mean the request itself is bad: InvalidArgument on messages."""
    upstream.script(Script(mode="status", status=status))
    with pytest.raises(InvalidArgument) as info:
        await collect(backend)
    assert info.value.field == "messages" and f"HTTP {status}" in info.value.reason


@pytest.mark.parametrize("mode", ["hang", "stall"])
async def test_first_token_timeout(upstream, fast_backend, mode):
    """No headers (hang) or headers but no token (stall at 0) within first_token_s: a timeout."""
    upstream.script(Script(mode=mode, after=0))
    start = time.monotonic()
    err = await fails(fast_backend)
    assert err.reason == "first-token timeout: no token within 0.3 s"
    assert 0.25 < time.monotonic() - start < 1.5


async def test_chunks_that_arrive_together_are_relayed_as_one(upstream, backend):
    """Content chunks read at once become one delta counting them all; chunks that arrive apart
    stay apart (nothing waits to be coalesced), and the counts add up to the usage."""
    upstream.script(Script(tokens=5))
    *deltas, finish = await collect(backend)
    assert [(d.text, d.tokens) for d in deltas] == [("t0 t1 t2 t3 t4 ", 5)]
    upstream.script(Script(tokens=3, delay_s=0.05))
    *deltas, finish = await collect(backend)
    assert [(d.text, d.tokens) for d in deltas] == [("t0 ", 1), ("t1 ", 1), ("t2 ", 1)]
    assert finish.completion_tokens == 3


async def test_stall_mid_stream(upstream, fast_backend):
    """A stream that stops after 2 tokens fails with a stall error once between_tokens_s passes."""
    upstream.script(Script(mode="stall", after=2))
    seen: list[Any] = []
    with pytest.raises(BackendUnavailable) as info:
        async for event in fast_backend.generate(make_request()):
            seen.append(event)
    assert sum(d.tokens for d in seen) == 2
    assert "stalled: no token for 0.3 s after 2 tokens" in info.value.reason


async def test_total_timeout(upstream):
    """A steady but slow stream is cut at total_s."""
    b = make_backend(upstream.base_url, timeouts={**FAST, "total_s": 0.4})
    upstream.script(Script(tokens=50, delay_s=0.1))
    assert "total timeout of 0.4 s" in (await fails(b)).reason
    await b.aclose()


async def test_done_without_finish_reason_is_an_error(upstream, backend):
    """[DONE] with no finish_reason before it (an interrupted stream) is not a success."""
    upstream.script(Script(tokens=2, finish=""))
    assert (await fails(backend)).reason == (
        "[DONE] without a finish_reason before completion (after 2 chunks)"
    )


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("malformed", "malformed stream: event data is not a JSON object"),
        ("close", "stream closed before completion"),
        ("hangup", "connection closed before a response"),
        ("error", "error in stream: overloaded_error: scripted error"),
    ],
)
async def test_broken_streams(upstream, backend, mode, reason):
    """Broken JSON, a dropped connection, no response and an error chunk: readable reasons."""
    upstream.script(Script(mode=mode, after=2))
    assert (await fails(backend)).reason.startswith(reason)


@pytest.mark.parametrize("mode", ["malformed", "error"])
async def test_text_read_with_a_failure_is_relayed_before_it(upstream, backend, mode):
    """Chunks that arrived in the same read as a broken chunk or an error chunk still go out
    (and are counted) before the failure is raised."""
    upstream.script(Script(mode=mode, after=2))
    seen: list[Any] = []
    with pytest.raises(BackendUnavailable):
        async for event in backend.generate(make_request()):
            seen.append(event)
    assert "".join(d.text for d in seen) == "t0 t1 " and sum(d.tokens for d in seen) == 2


async def test_api_key_from_env_is_sent_and_never_shown(upstream, monkeypatch):
    """The key is read from the named variable at request time, sent as a Bearer token, and
    redacted from errors even when the upstream echoes it back."""
    monkeypatch.setenv("TR_TEST_KEY", "sk-very-secret-42")
    b = make_backend(upstream.base_url, api_key_env="TR_TEST_KEY")
    await collect(b)
    assert upstream.requests[-1].headers["authorization"] == "Bearer sk-very-secret-42"
    upstream.script(Script(mode="status", status=401, body="bad key sk-very-secret-42"))
    err = await fails(b)
    assert "sk-very-secret-42" not in str(err) and err.reason.startswith("HTTP 401")
    await b.aclose()


async def test_missing_api_key_env_names_the_variable(upstream, monkeypatch):
    """An unset key variable fails with a message naming it, before anything is sent."""
    monkeypatch.delenv("TR_MISSING_KEY", raising=False)
    b = make_backend(upstream.base_url, api_key_env="TR_MISSING_KEY")
    err = await fails(b)
    assert "TR_MISSING_KEY" in err.reason and not upstream.requests
    await b.aclose()


async def test_closing_the_stream_closes_the_upstream_connection(upstream, backend):
    """Closing the generator mid-stream closes the upstream connection and frees the slot."""
    upstream.script(Script(tokens=200, delay_s=0.02))
    stream = backend.generate(make_request())
    assert isinstance(await anext(stream), TextDelta)
    assert upstream.active_streams == 1 and backend.load().in_flight == 1
    await stream.aclose()
    assert await upstream.wait_until(lambda: upstream.open_connections == 0, timeout=2.0)
    assert upstream.active_streams == 0 and backend.load().in_flight == 0


async def test_completed_streams_reuse_the_keep_alive_connection(upstream, backend):
    """A stream read to its end leaves its connection in the pool for the next request."""
    for _ in range(3):
        await collect(backend)
    assert upstream.connections_accepted == 1 and upstream.open_connections == 1


@pytest.mark.parametrize("mode", ["normal", "hang"])
async def test_cancelling_the_task_closes_the_upstream_connection(upstream, backend, mode):
    """Cancelling the consuming task, mid-stream or before the headers, closes the connection."""
    upstream.script(Script(mode=mode, tokens=200, delay_s=0.02))

    async def consume() -> None:
        async for _ in backend.generate(make_request()):
            pass

    task = asyncio.ensure_future(consume())
    assert await upstream.wait_until(lambda: upstream.active_streams == 1)
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await upstream.wait_until(lambda: upstream.open_connections == 0, timeout=2.0)
    assert backend.load().in_flight == 0


async def test_max_concurrency_refuses_at_once(upstream):
    """Beyond max_concurrency a request gets ResourceExhausted immediately, without I/O."""
    b = make_backend(upstream.base_url, max_concurrency=1)
    upstream.script(Script(mode="hang"))
    first = b.generate(make_request())
    pending = asyncio.ensure_future(anext(first))
    assert await upstream.wait_until(lambda: upstream.active_streams == 1)
    with pytest.raises(ResourceExhausted, match="max_concurrency 1"):
        await collect(b)
    assert b.load().in_flight == 1 and b.load().limit == 1 and len(upstream.requests) == 1
    pending.cancel()
    await asyncio.gather(pending, return_exceptions=True)
    await first.aclose()
    await b.aclose()


async def test_all_connections_busy_is_resource_exhausted_naming_the_limit(upstream):
    """A request that waits for one of max_connections until its first-token deadline gets
    ResourceExhausted naming the limit (the router's own, so no health failure), not a
    first-token timeout; nothing of it is sent."""
    b = make_backend(
        upstream.base_url,
        max_connections=1,
        timeouts={"first_token_s": 0.3, "between_tokens_s": 5.0, "connect_s": 1.0},
    )
    upstream.script(Script(tokens=100, delay_s=0.05))  # holds its connection for seconds
    first = b.generate(make_request())
    assert isinstance(await anext(first), TextDelta)
    with pytest.raises(ResourceExhausted, match="max_connections 1"):
        await collect(b)
    assert len(upstream.requests) == 1
    await first.aclose()
    await b.aclose()


async def test_scripts_apply_in_order_then_the_default(upstream, backend):
    """Queued scripts answer the next requests in order (a 500, then a normal stream)."""
    upstream.script(Script(mode="status", status=500), Script(tokens=2))
    assert (await fails(backend)).reason.startswith("HTTP 500")
    assert (await collect(backend))[-1].completion_tokens == 2
    assert (await collect(backend))[-1].completion_tokens == upstream.default.tokens


async def test_a_leading_bom_is_ignored(upstream, backend):
    """A stream that starts with a byte-order mark (split across chunks) loses no token."""
    upstream.script(Script(tokens=3, bom=True))
    *deltas, finish = await collect(backend)
    assert "".join(d.text for d in deltas) == "t0 t1 t2 " and finish.completion_tokens == 3


async def test_an_endless_line_fails_the_attempt(upstream, backend):
    """An upstream sending a line that never ends fails after 1 MiB, naming the backend."""
    upstream.script(Script(mode="flood", after=2))
    error = await fails(backend)
    assert error.reason == "malformed stream: an SSE line is longer than 1048576 characters"
    assert await upstream.wait_until(lambda: upstream.active_streams == 0)


async def test_deeply_nested_json_in_a_stream_is_malformed(upstream, backend):
    """An event of JSON nested too deeply is a malformed stream, not an internal error."""
    upstream.script(Script(mode="raw", raw=(b"data: " + b"[" * 50_000 + b"\n\n",)))
    error = await fails(backend)
    assert error.reason.startswith("malformed stream: event data is not a JSON object")


@pytest.mark.parametrize("bad", [-5, 10**15, float("inf"), float("nan"), 2.5, True])
async def test_impossible_usage_counts_are_ignored(upstream, backend, bad):
    """A negative, huge, infinite or fractional prompt count is replaced by the estimate."""
    upstream.script(Script(tokens=3, prompt_tokens=bad))
    *_, finish = await collect(backend)
    assert finish == Finish(prompt_tokens_estimate(make_request()), 3, "stop")
