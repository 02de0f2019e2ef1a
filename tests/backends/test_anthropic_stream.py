"""The Anthropic stream parser (backends/anthropic_stream.py) and the delta batching it feeds."""

from __future__ import annotations

from typing import Any

import pytest

from backends.anthropic_stream import AnthropicStream, map_stop_reason
from backends.delta_batch import DeltaBatch
from router.core.backend import TextDelta, ToolCallDelta
from router.core.errors import BackendUnavailable


def start(index: int, block: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": block}


def tool(index: int, call_id: str, name: str) -> dict[str, Any]:
    return start(index, {"type": "tool_use", "id": call_id, "name": name, "input": {}})


def text(index: int, t: str) -> dict[str, Any]:
    return {
        "type": "content_block_delta",
        "index": index,
        "delta": {"type": "text_delta", "text": t},
    }


def json_piece(index: int, piece: str) -> dict[str, Any]:
    delta = {"type": "input_json_delta", "partial_json": piece}
    return {"type": "content_block_delta", "index": index, "delta": delta}


def end(reason: str, output_tokens: int = 9) -> dict[str, Any]:
    delta = {"stop_reason": reason, "stop_sequence": None}
    return {"type": "message_delta", "delta": delta, "usage": {"output_tokens": output_tokens}}


def run(
    events: list[dict[str, Any]], answer: str | None = None
) -> tuple[AnthropicStream, list[TextDelta]]:
    """Feeds each event as its own read and returns the parser and every delta."""
    stream, out, deltas = AnthropicStream("claude", answer), DeltaBatch(), []
    for doc in events:
        stream.feed(doc["type"], doc, out)
        deltas += out.take()
    return stream, deltas


def test_text_then_tool_use_gives_text_then_fragments_indexed_among_tool_uses():
    """A tool_use at block index 1 is call 0: its start carries id and name, its input_json
    pieces (not the empty one) are arguments; stop_reason tool_use is finish tool_calls."""
    message = {"usage": {"input_tokens": 40, "cache_read_input_tokens": 2, "output_tokens": 1}}
    stream, deltas = run(
        [
            {"type": "message_start", "message": message},
            start(0, {"type": "text", "text": ""}),
            {"type": "ping"},
            text(0, "Let me check."),
            {"type": "content_block_stop", "index": 0},
            tool(1, "toolu_1", "get_weather"),
            json_piece(1, ""),
            json_piece(1, '{"city":'),
            json_piece(1, ' "Paris"}'),
            {"type": "content_block_stop", "index": 1},
            end("tool_use", 30),
            {"type": "message_stop"},
        ]
    )
    assert [d.text for d in deltas if d.text] == ["Let me check."]
    calls = [c for d in deltas for c in d.tool_calls]
    assert calls == [
        ToolCallDelta(0, "toolu_1", "get_weather", ""),
        ToolCallDelta(0, "", "", '{"city":'),
        ToolCallDelta(0, "", "", ' "Paris"}'),
    ]
    assert stream.finish == "tool_calls" and stream.stopped
    assert (stream.prompt, stream.completion) == (42, 30)


def test_parallel_tool_uses_are_numbered_0_and_1():
    """Two tool_use blocks (block indices 2 and 3, after text and thinking) are calls 0 and 1,
    their pieces routed by block index even when interleaved."""
    _, deltas = run(
        [
            start(0, {"type": "thinking", "thinking": ""}),
            start(1, {"type": "text", "text": ""}),
            tool(2, "toolu_a", "get_weather"),
            tool(3, "toolu_b", "get_time"),
            json_piece(3, "{}"),
            json_piece(2, '{"city": "Rome"}'),
            end("tool_use"),
        ]
    )
    calls = [c for d in deltas for c in d.tool_calls]
    assert calls == [
        ToolCallDelta(0, "toolu_a", "get_weather", ""),
        ToolCallDelta(1, "toolu_b", "get_time", ""),
        ToolCallDelta(1, "", "", "{}"),
        ToolCallDelta(0, "", "", '{"city": "Rome"}'),
    ]


def test_the_answer_tool_input_is_relayed_as_text_with_finish_stop():
    """The synthetic answer tool's input is the JSON answer as text, and its tool_use stop is
    finish stop."""
    stream, deltas = run(
        [
            tool(0, "toolu_x", "city"),
            json_piece(0, '{"city": '),
            json_piece(0, '"Oslo"}'),
            end("tool_use"),
        ],
        answer="city",
    )
    assert "".join(d.text for d in deltas) == '{"city": "Oslo"}'
    assert not any(d.tool_calls for d in deltas)
    assert stream.finish == "stop"


def test_a_real_call_beside_the_answer_tool_finishes_with_tool_calls():
    """When the model called an offered tool (not the answer tool) the finish is tool_calls."""
    stream, deltas = run(
        [tool(0, "toolu_1", "get_weather"), json_piece(0, "{}"), end("tool_use")], answer="city"
    )
    assert [c.name for d in deltas for c in d.tool_calls] == ["get_weather", ""]
    assert stream.finish == "tool_calls"


@pytest.mark.parametrize(
    ("reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "refusal"),
    ],
)
def test_stop_reasons(reason, finish):
    """Each stop_reason in the router's terms; unknown ones pass through."""
    assert map_stop_reason(reason) == finish


def test_error_event_raises_backend_unavailable():
    """An error event is BackendUnavailable naming its type and message."""
    stream = AnthropicStream("claude")
    doc = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    with pytest.raises(BackendUnavailable, match="error event: overloaded_error: Overloaded"):
        stream.feed("error", doc, DeltaBatch())


def test_a_read_of_many_events_is_few_deltas_in_order():
    """Text pieces join, argument pieces of one call join, and text after calls starts a new
    delta, so one read of eight events is two deltas with the order kept."""
    stream, out = AnthropicStream("claude"), DeltaBatch()
    for doc in [
        text(0, "a"),
        text(0, "b"),
        tool(1, "toolu_1", "f"),
        json_piece(1, '{"x"'),
        json_piece(1, ": 1}"),
        tool(2, "toolu_2", "g"),
        json_piece(2, "{}"),
        text(3, "c"),
    ]:
        stream.feed(doc["type"], doc, out)
    assert out.pieces == 8
    first, second = out.take()
    assert first.text == "ab" and first.tool_calls == (
        ToolCallDelta(0, "toolu_1", "f", '{"x": 1}'),
        ToolCallDelta(1, "toolu_2", "g", "{}"),
    )
    assert second == TextDelta("c", 1, ())
    assert first.tokens >= 5 and out.pieces == 0
