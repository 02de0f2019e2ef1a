"""Streamed tool calls from OpenAI-compatible servers that differ from OpenAI's own stream:
ids left out or repeated, text and calls in one read, odd entries, the legacy finish reason."""

from __future__ import annotations

import json
from typing import Any

from backends.openai_compat import OpenAICompatBackend, OpenAIConfig
from router.core.backend import Finish, TextDelta, ToolCallDelta
from router.core.types import ChatMessage, Request
from tests.fakes.fake_upstream import FakeUpstream, Script

TIMEOUTS = {"first_token_s": 5.0, "between_tokens_s": 5.0, "connect_s": 2.0}
REQUEST = Request("req-42", "t", (ChatMessage("user", "hi"),), 32, 0.0)


def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return b"data: " + json.dumps({"choices": [choice]}).encode() + b"\n\n"


def fragment(index: Any, args: str, call_id: str | None = None, name: str | None = None) -> dict:
    function: dict[str, Any] = {"arguments": args}
    if name is not None:
        function["name"] = name
    item: dict[str, Any] = {"index": index, "function": function}
    if call_id is not None:
        item["id"] = call_id
    return {"tool_calls": [item]}


async def stream(upstream: FakeUpstream, *frames: bytes) -> list[Any]:
    """The events of the backend for a body made of `frames`."""
    upstream.script(Script(mode="replay", replay=b"".join([*frames, b"data: [DONE]\n\n"])))
    config = OpenAIConfig(type="openai", model="m", base_url=upstream.base_url, timeouts=TIMEOUTS)
    backend = OpenAICompatBackend("gpu", config)
    try:
        return [e async for e in backend.generate(REQUEST)]
    finally:
        await backend.aclose()


def calls(events: list[Any]) -> list[ToolCallDelta]:
    """The tool-call fragments, argument pieces of one call in a row joined (however the
    upstream's bytes were split into reads)."""
    out: list[ToolCallDelta] = []
    for c in (c for e in events if isinstance(e, TextDelta) for c in e.tool_calls):
        last = out[-1] if out else None
        if last and last.index == c.index and not (c.id or c.name):
            out[-1] = ToolCallDelta(last.index, last.id, last.name, last.arguments + c.arguments)
        else:
            out.append(c)
    return out


def order(events: list[Any]) -> list[Any]:
    """Text and tool-call fragments in stream order, adjacent texts joined."""
    out: list[Any] = []
    for e in events:
        if not isinstance(e, TextDelta):
            continue
        for item in [e.text, *e.tool_calls] if e.text else e.tool_calls:
            if isinstance(item, str) and out and isinstance(out[-1], str):
                out[-1] += item
            else:
                out.append(item)
    return out


async def test_a_missing_id_is_made_up_from_the_request_id(upstream):
    """A server that sends no call id gets one, call_<request id>_<index>, on the first fragment."""
    events = await stream(
        upstream,
        chunk(fragment(0, "", name="f")),
        chunk(fragment(0, "{}")),
        chunk({}, "tool_calls"),
    )
    assert calls(events) == [ToolCallDelta(0, "call_req-42_0", "f", "{}")]


async def test_ids_and_names_repeated_on_every_fragment_are_relayed_once(upstream):
    """llama-cpp-python's server repeats id and name on each fragment: only the first has them."""
    events = await stream(
        upstream,
        chunk(fragment(0, '{"a"', "call_x", "f")),
        chunk(fragment(0, ": 1}", "call_x", "f")),
        chunk({}, "tool_calls"),
    )
    assert calls(events) == [ToolCallDelta(0, "call_x", "f", '{"a": 1}')]
    assert events[-1] == Finish(events[-1].prompt_tokens, 2, "tool_calls")


async def test_text_then_calls_then_text_keep_their_order(upstream):
    """Text, a call, then text again come out in that order; each chunk is a token."""
    events = await stream(
        upstream,
        chunk({"content": "Let me see. "}),
        chunk(fragment(0, "{}", "call_1", "f")),
        chunk({"content": "Done."}),
        chunk({}, "stop"),
    )
    *deltas, finish = events
    assert order(deltas) == ["Let me see. ", ToolCallDelta(0, "call_1", "f", "{}"), "Done."]
    assert (
        sum(d.tokens for d in deltas) == finish.completion_tokens == 3
        and finish.finish_reason == "stop"
    )


async def test_odd_entries_are_skipped_and_a_bad_index_falls_back_to_the_position(upstream):
    """A non-object entry is skipped; an index that is not a small whole number is the entry's
    position in the list."""
    odd = {"tool_calls": ["junk", {"index": "x", "id": "call_1", "function": {"name": "f"}}]}
    events = await stream(upstream, chunk(odd), chunk({}, "tool_calls"))
    assert calls(events) == [ToolCallDelta(1, "call_1", "f", "")]


async def test_legacy_function_call_finish_is_tool_calls(upstream):
    """The legacy finish_reason function_call is reported as tool_calls."""
    events = await stream(
        upstream, chunk(fragment(0, "{}", "call_1", "f")), chunk({}, "function_call")
    )
    assert events[-1].finish_reason == "tool_calls"
