"""Recorded OpenAI and Anthropic streams (tests/fakes/data) through the real backend classes.

FakeUpstream replays each recording byte for byte; the backends must turn it into the right
tool-call fragments (ids and names first, arguments joining to the recorded JSON), text,
finish reason and usage.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from backends.anthropic import AnthropicBackend, AnthropicConfig
from backends.openai_compat import OpenAICompatBackend, OpenAIConfig
from router.core.backend import Finish, TextDelta
from router.core.errors import BackendUnavailable
from router.core.types import ChatMessage, Request, ResponseFormat, ToolChoice, ToolSpec
from tests.fakes.fake_upstream import FakeUpstream, Script, load_recording, sse_events

TIMEOUTS = {"first_token_s": 5.0, "between_tokens_s": 5.0, "connect_s": 2.0}
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
WEATHER = ToolSpec("get_weather", "The weather in a city.", json.dumps(SCHEMA))
REQUEST = Request(
    "req-1", "t", (ChatMessage("user", "Weather in Paris?"),), 64, 0.0, tools=(WEATHER,)
)


def openai_backend(upstream: FakeUpstream) -> OpenAICompatBackend:
    config = OpenAIConfig(type="openai", model="m", base_url=upstream.base_url, timeouts=TIMEOUTS)
    return OpenAICompatBackend("gpt", config)


def anthropic_backend(upstream: FakeUpstream) -> AnthropicBackend:
    config = AnthropicConfig(
        type="anthropic", model="c", base_url=upstream.root_url, api_key_env=None, timeouts=TIMEOUTS
    )
    return AnthropicBackend("claude", config)


async def replay(backend: Any, upstream: FakeUpstream, name: str, request: Request = REQUEST):
    """(deltas, finish, calls by index as [id, name, arguments]) of one replayed recording."""
    upstream.script(Script(mode="replay", replay=load_recording(name)))
    try:
        *deltas, finish = [e async for e in backend.generate(request)]
    finally:
        await backend.aclose()
    assert all(isinstance(d, TextDelta) for d in deltas) and isinstance(finish, Finish)
    calls: dict[int, list[str]] = {}
    for d in deltas:
        for c in d.tool_calls:
            call = calls.setdefault(c.index, ["", "", ""])
            assert not (call[0] and c.id), "an id comes once, on the first fragment"
            call[0], call[1], call[2] = call[0] or c.id, call[1] or c.name, call[2] + c.arguments
    return deltas, finish, calls


def test_replay_serves_the_recording_verbatim_one_chunk_per_event():
    """The replay pieces join to the file's bytes, each ending an SSE event."""
    body = load_recording("anthropic_text_then_tool.sse")
    pieces = sse_events(body)
    assert b"".join(pieces) == body and all(p.endswith(b"\n\n") for p in pieces)
    assert len(pieces) == body.count(b"\n\n")


async def test_openai_tool_call(upstream):
    """One call: id and name from the first fragment, arguments joined from five, finish
    tool_calls, usage from the usage chunk."""
    _, finish, calls = await replay(openai_backend(upstream), upstream, "openai_tool_calls.sse")
    assert calls == {0: ["call_Xk2Jb7QmP1sT9dVwZr4nLc8a", "get_weather", '{"city":"Paris"}']}
    assert finish == Finish(82, 15, "tool_calls")


async def test_openai_parallel_tool_calls(upstream):
    """Two calls by index 0 and 1, each complete, one finish tool_calls."""
    deltas, finish, calls = await replay(
        openai_backend(upstream), upstream, "openai_parallel_tool_calls.sse"
    )
    assert calls == {
        0: ["call_R4tYp9LmW2qE6sJzN1vKb3Hx", "get_weather", '{"city":"Paris"}'],
        1: ["call_M8nQw3ZrT5yU1oPa7Vs2Kd9c", "get_weather", '{"city":"Tokyo"}'],
    }
    assert all(json.loads(c[2]) for c in calls.values())
    assert not "".join(d.text for d in deltas)
    assert finish == Finish(96, 36, "tool_calls")


async def test_openai_text_answer(upstream):
    """The answer after a tool result: text only, finish stop, usage counted."""
    deltas, finish, calls = await replay(
        openai_backend(upstream), upstream, "openai_text_answer.sse"
    )
    assert "".join(d.text for d in deltas) == "The weather in Paris is sunny and 22 °C."
    assert calls == {} and finish == Finish(121, 10, "stop")


async def test_anthropic_text_then_tool_use(upstream):
    """The documented text-then-tool stream: the text, then call 0 (block index 1) with its
    arguments joined, finish tool_calls, prompt tokens from message_start and output from
    message_delta."""
    deltas, finish, calls = await replay(
        anthropic_backend(upstream), upstream, "anthropic_text_then_tool.sse"
    )
    assert "".join(d.text for d in deltas) == "Let's check the weather in Paris:"
    assert calls == {
        0: ["toolu_01Vq8ZcN3mTkLw5YsR2bXe7D", "get_weather", '{"city": "Paris", "unit": "celsius"}']
    }
    assert finish == Finish(410, 64, "tool_calls")


async def test_anthropic_tool_use_only(upstream):
    """A tool_use-only answer: one call, no text, finish tool_calls."""
    deltas, finish, calls = await replay(
        anthropic_backend(upstream), upstream, "anthropic_tool_use.sse"
    )
    assert calls == {0: ["toolu_01Ab4Kx7PqW2nZr9Tm3Lc6Yd", "get_weather", '{"city": "Paris"}']}
    assert not "".join(d.text for d in deltas)
    assert finish == Finish(385, 41, "tool_calls")


async def test_anthropic_text_answer(upstream):
    """The answer after a tool result: text, finish stop, usage."""
    deltas, finish, calls = await replay(
        anthropic_backend(upstream), upstream, "anthropic_text_answer.sse"
    )
    assert "".join(d.text for d in deltas) == "It's sunny in Paris and 22 °C."
    assert calls == {} and finish == Finish(452, 14, "stop")


@pytest.mark.parametrize("name", ["anthropic_tool_use.sse", "anthropic_text_then_tool.sse"])
async def test_anthropic_answer_tool_stream_is_json_text(upstream, name):
    """Asked for JSON, Anthropic calls the answer tool: a recorded call of that name comes out as
    the JSON text with finish stop (here the answer tool is named get_weather)."""
    request = Request(
        "req-2",
        "t",
        (ChatMessage("user", "Weather in Paris?"),),
        64,
        0.0,
        tool_choice=ToolChoice("auto"),
        response_format=ResponseFormat("json_schema", "get_weather", json.dumps(SCHEMA)),
    )
    deltas, finish, calls = await replay(anthropic_backend(upstream), upstream, name, request)
    assert calls == {} and finish.finish_reason == "stop"
    sent = upstream.requests[-1].json
    assert sent["tool_choice"] == {"type": "tool", "name": "get_weather"}
    text = "".join(d.text for d in deltas)
    assert json.loads(text[text.index("{") :])["city"] == "Paris"


async def test_anthropic_error_event_after_tool_fragments(upstream):
    """An error event cutting a recorded tool_use stream short: the fragments before it are
    relayed, then BackendUnavailable names the error (so the router may retry elsewhere)."""
    events = sse_events(load_recording("anthropic_tool_use.sse"))[:5]  # up to the first piece
    doc = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    error = b"event: error\ndata: " + json.dumps(doc).encode() + b"\n\n"
    upstream.script(Script(mode="replay", replay=b"".join([*events, error])))
    backend, seen = anthropic_backend(upstream), []
    with pytest.raises(BackendUnavailable, match="error event: overloaded_error: Overloaded"):
        async for event in backend.generate(REQUEST):
            seen.append(event)
    await backend.aclose()
    fragments = [c for d in seen for c in d.tool_calls]
    assert fragments[0].name == "get_weather"
    assert "".join(c.arguments for c in fragments) == '{"city": "Paris"'
