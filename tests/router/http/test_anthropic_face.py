"""The Anthropic face without a server: answers in the documented stream format (checked
against the recorded Anthropic streams), whole messages, error objects, and the field names of
the shared checks. Request parsing is in test_anthropic_request.py."""

from __future__ import annotations

from typing import Any

import orjson

from router.core.backend import TextDelta, ToolCallDelta
from router.core.types import Decision, Privacy, Tier, Usage
from router.http.anthropic_face import AnthropicFace
from tests.fakes.fake_upstream import load_recording

FACE = AnthropicFace()


def decision() -> Decision:
    return Decision(
        "r1",
        "edge",
        "smollm2",
        Tier.EDGE,
        "default",
        Privacy.PUBLIC,
        7,
        0.0,
        10.0,
        "single",
        50,
        (),
        config_version="abc",
    )


def events(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) of each SSE event, pings left out (they may come anywhere)."""
    out = []
    for chunk in raw.decode().split("\n\n"):
        if not chunk.strip():
            continue
        lines = dict(line.split(": ", 1) for line in chunk.splitlines())
        if lines["event"] != "ping":
            out.append((lines["event"], orjson.loads(lines["data"])))
    return out


def shape(event: tuple[str, dict[str, Any]]) -> tuple:
    """An event's name, type and the types of its block or delta: what the format fixes."""
    name, data = event
    inner = data.get("content_block") or data.get("delta") or {}
    return name, data["type"], inner.get("type"), data.get("index")


def test_the_stream_has_the_recorded_event_sequence_for_text_then_a_tool_call() -> None:
    """Text deltas then a tool call's fragments encode to the same event sequence, block types
    and indexes as Anthropic's recorded stream (tests/fakes/data/anthropic_text_then_tool.sse)."""
    parsed = FACE.parse(
        {"model": "auto", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    )
    enc = FACE.encoder(parsed, "r1")
    raw = enc.start(decision())
    for word in ("Let", "'s", " check"):
        raw += enc.delta(TextDelta(word))
    raw += enc.delta(TextDelta("", 1, (ToolCallDelta(0, "toolu_9", "get_weather", ""),)))
    for piece in ('{"city"', ': "Paris"}'):
        raw += enc.delta(TextDelta("", 1, (ToolCallDelta(0, "", "", piece),)))
    raw += enc.finish(Usage(7, 5, finish_reason="tool_calls"))
    ours = events(raw)
    recorded = events(load_recording("anthropic_text_then_tool.sse"))

    def collapse(evts: list) -> list:  # runs of deltas of one block count once
        out: list = []
        for e in map(shape, evts):
            if not (out and e[0] == "content_block_delta" and out[-1] == e):
                out.append(e)
        return out

    assert collapse(ours) == collapse(recorded)
    assert ours[-2][1]["delta"]["stop_reason"] == "tool_use"
    assert ours[0][1]["message"]["usage"]["input_tokens"] == 7
    assert ours[0][1]["message"]["tokenrouter"]["backend"] == "edge"


def test_a_text_answer_has_the_recorded_event_sequence() -> None:
    """A plain text answer matches the recorded text stream's sequence and ends end_turn."""
    parsed = FACE.parse(
        {"model": "auto", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    )
    enc = FACE.encoder(parsed, "r1")
    raw = enc.start(decision()) + enc.delta(TextDelta("Sunny")) + enc.delta(TextDelta("."))
    raw += enc.finish(Usage(7, 2, finish_reason="stop"))
    names = [e[0] for e in events(raw)]
    recorded = [e[0] for e in events(load_recording("anthropic_text_answer.sse"))]
    assert sorted(set(names)) == sorted(set(recorded)) and names[0] == recorded[0]
    assert names[-2:] == recorded[-2:] == ["message_delta", "message_stop"]
    assert events(raw)[-2][1]["delta"]["stop_reason"] == "end_turn"


def test_the_whole_answer_has_text_and_tool_use_blocks() -> None:
    """The non-streaming message carries a text block, a tool_use block with parsed input,
    tool_use as stop reason, the usage and the decision."""
    parsed = FACE.parse(
        {"model": "auto", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    )
    col = FACE.collector(parsed, "r1")
    col.delta(TextDelta("Checking."))
    col.delta(TextDelta("", 1, (ToolCallDelta(0, "toolu_9", "w", '{"city":'),)))
    col.delta(TextDelta("", 1, (ToolCallDelta(0, "", "", '"Paris"}'),)))
    body = orjson.loads(col.body(decision(), Usage(7, 3, finish_reason="tool_calls")))
    assert body["type"] == "message" and body["id"] == "msg_r1"
    assert body["content"] == [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "toolu_9", "name": "w", "input": {"city": "Paris"}},
    ]
    assert body["stop_reason"] == "tool_use"
    assert body["usage"] == {"input_tokens": 7, "output_tokens": 3}


def test_error_bodies_use_anthropic_types() -> None:
    """Statuses map to Anthropic's error types inside {"type": "error", "error": {...}}."""
    for status, kind in (
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (404, "not_found_error"),
        (429, "rate_limit_error"),
        (503, "overloaded_error"),
        (500, "api_error"),
    ):
        body = orjson.loads(FACE.error_body(status, "m", None))
        assert body == {"type": "error", "error": {"type": kind, "message": "m"}}


def test_errors_from_the_request_checks_name_the_body_fields() -> None:
    """convert.py names pb fields; the Anthropic request maps them back to the body's turns and
    blocks (the system message and split tool results shift the indexes)."""
    content = [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"},
        {"type": "text", "text": "next"},
    ]
    body = {
        "model": "auto",
        "max_tokens": 8,
        "system": "S",
        "messages": [{"role": "user", "content": "a"}, {"role": "user", "content": content}],
    }
    rename = FACE.parse(body).rename
    assert rename is not None
    assert rename("messages[0].content") == "system"
    assert rename("messages[1].role") == "messages[0].role"
    assert rename("messages[2].tool_call_id") == "messages[1].content[0].tool_use_id"
    assert rename("messages[3].content") == "messages[1].content[1].text"
    assert rename("stop[1]") == "stop_sequences[1]"
    assert rename("tools[0].parameters") == "tools[0].input_schema"


def test_a_forced_tool_call_has_the_recorded_event_sequence() -> None:
    """A tool call only (a forced tool_choice) encodes as one tool_use block, like the recorded
    streams of a forced and an `any` tool call."""
    parsed = FACE.parse(
        {"model": "auto", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    )
    enc = FACE.encoder(parsed, "r1")
    raw = enc.start(decision())
    raw += enc.delta(TextDelta("", 1, (ToolCallDelta(0, "toolu_1", "place", '{"city"'),)))
    raw += enc.delta(TextDelta("", 1, (ToolCallDelta(0, "", "", ': "Lyon"}'),)))
    raw += enc.finish(Usage(9, 5, finish_reason="tool_calls"))

    def collapse(evts: list) -> list:
        return [e for i, e in enumerate(map(shape, evts)) if i == 0 or shape(evts[i - 1]) != e]

    ours = events(raw)
    for name in ("anthropic_forced_tool.sse", "anthropic_tool_use.sse"):
        assert collapse(ours) == collapse(events(load_recording(name))), name
    assert ours[1][1]["content_block"] == {
        "type": "tool_use",
        "id": "toolu_1",
        "name": "place",
        "input": {},
    }
    pieces = [e[1]["delta"]["partial_json"] for e in ours if e[0] == "content_block_delta"]
    assert orjson.loads("".join(pieces)) == {"city": "Lyon"}


def test_message_delta_carries_the_exact_token_counts() -> None:
    """message_delta's usage has the backend's input and output counts, which replace the
    router's input count of message_start (the SDK's final message takes them)."""
    parsed = FACE.parse(
        {"model": "auto", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    )
    enc = FACE.encoder(parsed, "r1")
    raw = enc.start(decision()) + enc.delta(TextDelta("x"))
    raw += enc.finish(Usage(11, 1, finish_reason="length"))
    evts = events(raw)
    assert evts[0][1]["message"]["usage"] == {"input_tokens": 7, "output_tokens": 0}
    assert evts[-2][1]["usage"] == {"input_tokens": 11, "output_tokens": 1}
    assert evts[-2][1]["delta"] == {"stop_reason": "max_tokens", "stop_sequence": None}


def test_an_in_stream_error_is_an_error_event() -> None:
    """A failure after the stream began is `event: error` with Anthropic's error object."""
    parsed = FACE.parse(
        {"model": "auto", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    )
    raw = FACE.encoder(parsed, "r1").error(503, "backend gpu: gone")
    assert raw.startswith(b"event: error\ndata: ") and raw.endswith(b"\n\n")
    assert events(raw) == [
        (
            "error",
            {
                "type": "error",
                "error": {"type": "overloaded_error", "message": "backend gpu: gone"},
            },
        )
    ]
