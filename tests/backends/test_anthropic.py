"""The Anthropic Messages backend against FakeUpstream in Anthropic mode."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest

from backends.anthropic import AnthropicBackend, AnthropicConfig, to_anthropic
from router.core.backend import Finish, TextDelta
from router.core.errors import BackendUnavailable
from router.core.estimates import prompt_tokens_estimate
from router.core.types import ChatMessage, Request
from tests.fakes.fake_upstream import FakeUpstream, Script

KEY_ENV = "TR_TEST_ANTHROPIC_KEY"
TIMEOUTS = {"first_token_s": 5.0, "between_tokens_s": 5.0, "connect_s": 2.0}
MESSAGES = (
    ChatMessage("system", "Be brief."),
    ChatMessage("user", "Hi."),
    ChatMessage("user", "Still there?"),
    ChatMessage("system", "Answer in English."),
    ChatMessage("assistant", "Yes."),
    ChatMessage("tool", "42"),
)


def make_request(temperature: float = 0.5) -> Request:
    return Request("r", "t", MESSAGES, 32, temperature)


@pytest.fixture
async def backend(upstream: FakeUpstream, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-ant-secret")
    config = AnthropicConfig(
        type="anthropic",
        model="claude",
        upstream_model="claude-x-1",
        base_url=upstream.root_url,
        api_key_env=KEY_ENV,
        timeouts=TIMEOUTS,
    )
    b = AnthropicBackend("claude", config)
    await b.start()
    yield b
    await b.aclose()


async def collect(backend: AnthropicBackend, request: Request | None = None) -> list[Any]:
    return [e async for e in backend.generate(request or make_request())]


async def test_streams_text_and_usage(upstream, backend):
    """text_delta events become deltas; input/output tokens come from message_start/_delta."""
    upstream.script(Script(tokens=3, prompt_tokens=30))
    *deltas, finish = await collect(backend)
    assert "".join(d.text for d in deltas) == "t0 t1 t2 "
    assert all(isinstance(d, TextDelta) for d in deltas)
    assert finish == Finish(30, 3, "stop")


async def test_deltas_that_arrive_together_are_relayed_as_one(upstream, backend):
    """text_delta events read at once become one delta carrying the estimates of them all;
    ones that arrive apart stay apart (nothing waits to be coalesced)."""
    upstream.script(Script(tokens=3))
    deltas = (await collect(backend))[:-1]
    assert [d.text for d in deltas] == ["t0 t1 t2 "] and deltas[0].tokens == 3
    upstream.script(Script(tokens=3, delay_s=0.05))
    deltas = (await collect(backend))[:-1]
    assert [d.text for d in deltas] == ["t0 ", "t1 ", "t2 "]


async def test_completed_streams_reuse_the_keep_alive_connection(upstream, backend):
    """A stream read to message_stop leaves its connection in the pool for the next request."""
    for _ in range(3):
        await collect(backend)
    assert upstream.connections_accepted == 1


async def test_request_mapping_and_headers(upstream, backend):
    """System messages go to `system`, same-role turns merge, tool becomes user; headers are set."""
    await collect(backend)
    received = upstream.requests[-1]
    assert received.path == "/v1/messages"
    assert received.headers["x-api-key"] == "sk-ant-secret"
    assert received.headers["anthropic-version"] == "2023-06-01"
    assert received.headers["content-type"] == "application/json"
    assert received.json == {
        "model": "claude-x-1",
        "system": "Be brief.\n\nAnswer in English.",
        "messages": [
            {"role": "user", "content": "Hi.\n\nStill there?"},
            {"role": "assistant", "content": "Yes."},
            {"role": "user", "content": "42"},
        ],
        "max_tokens": 32,
        "temperature": 0.5,
        "stream": True,
    }


async def test_temperature_is_clamped_to_anthropic_range(upstream, backend):
    """Anthropic accepts temperatures up to 1, so higher ones are clamped."""
    await collect(backend, make_request(temperature=1.7))
    assert upstream.requests[-1].json["temperature"] == 1.0


def test_no_system_field_without_system_messages():
    """Without system messages the system text is empty (and the field is left out)."""
    assert to_anthropic([ChatMessage("user", "a")]) == ("", [{"role": "user", "content": "a"}])


@pytest.mark.parametrize(
    ("upstream_reason", "expected"),
    [("length", "length"), ("stop_sequence", "stop"), ("refusal", "refusal")],
)
async def test_stop_reasons(upstream, backend, upstream_reason, expected):
    """max_tokens -> length, end_turn/stop_sequence -> stop, others pass through."""
    upstream.script(Script(tokens=1, finish=upstream_reason))
    *_, finish = await collect(backend)
    assert finish.finish_reason == expected


async def test_counts_without_usage(upstream, backend):
    """Without usage fields, completion tokens are the deltas and the prompt is estimated."""
    upstream.script(Script(tokens=4, usage=False))
    *_, finish = await collect(backend)
    assert finish == Finish(prompt_tokens_estimate(make_request()), 4, "stop")


async def test_error_event(upstream, backend):
    """An `error` event mid-stream gives BackendUnavailable with its type and message."""
    upstream.script(Script(mode="error", after=1, error_type="overloaded_error"))
    with pytest.raises(BackendUnavailable) as info:
        await collect(backend)
    assert info.value.reason == "error event: overloaded_error: scripted error"


async def test_429_with_retry_after(upstream, backend):
    """HTTP 429 gives BackendUnavailable with retry_after_s from the header."""
    upstream.script(Script(mode="status", status=429, retry_after="12"))
    with pytest.raises(BackendUnavailable) as info:
        await collect(backend)
    assert info.value.retry_after_s == 12.0 and info.value.reason.startswith("HTTP 429")


async def test_close_mid_stream(upstream, backend):
    """A connection dropped after a token fails as a stream closed before completion."""
    upstream.script(Script(mode="close", after=1))
    with pytest.raises(BackendUnavailable, match="stream closed before completion"):
        await collect(backend)


async def test_probe_lists_models_with_the_key(upstream, backend):
    """probe() GETs /v1/models with the key and fails once the server refuses connections."""
    await backend.probe()
    assert upstream.requests[-1].path == "/v1/models"
    assert upstream.requests[-1].headers["x-api-key"] == "sk-ant-secret"
    await upstream.refuse()
    with pytest.raises(BackendUnavailable, match="connection refused"):
        await backend.probe()


def test_merging_keeps_every_part_in_order():
    """Runs of one role become one turn whose parts are joined by blank lines, in order."""
    messages = [ChatMessage("user", f"u{i}") for i in range(3)] + [
        ChatMessage("tool", "t"),
        ChatMessage("assistant", "a0"),
        ChatMessage("assistant", "a1"),
        ChatMessage("user", "last"),
    ]
    assert to_anthropic(messages)[1] == [
        {"role": "user", "content": "u0\n\nu1\n\nu2\n\nt"},
        {"role": "assistant", "content": "a0\n\na1"},
        {"role": "user", "content": "last"},
    ]


def _merge_time(count: int) -> float:
    """Seconds to_anthropic takes for `count` user messages of 100 chars (best of five)."""
    messages = [ChatMessage("user", "x" * 100)] * count
    best = math.inf
    for _ in range(5):
        start = time.perf_counter()
        _, turns = to_anthropic(messages)
        best = min(best, time.perf_counter() - start)
    assert len(turns) == 1 and len(turns[0]["content"]) == count * 102 - 2
    return best


def test_merging_costs_linear_time():
    """8x the messages of one role cost about 8x the time to merge, not 64x."""
    small, large = _merge_time(1000), _merge_time(8000)
    assert large / small < 32  # measured: 4 to 8 linear, about 190 with += on strings
