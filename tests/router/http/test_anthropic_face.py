"""The Anthropic face without a server: Messages bodies into requests (errors naming fields),
and answers in the documented stream format, checked against recorded streams."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from router.api import router_pb2 as pb
from router.core.backend import TextDelta, ToolCallDelta
from router.core.errors import InvalidArgument
from router.core.types import Decision, Privacy, Tier, Usage
from router.http.anthropic_face import AnthropicFace
from tests.fakes.fake_upstream import load_recording

FACE = AnthropicFace()


def parse(**body: Any) -> pb.GenerateRequest:
    body.setdefault("model", "auto")
    body.setdefault("max_tokens", 16)
    body.setdefault("messages", [{"role": "user", "content": "hi"}])
    return FACE.parse(body).request


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


def test_system_text_and_blocks_become_the_system_message() -> None:
    """`system` as a string or as text blocks is the first message, role system; an empty
    system prompt adds none."""
    assert parse(system="Be terse.").messages[0] == pb.Message(role="system", content="Be terse.")
    blocks = [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}]
    assert parse(system=blocks).messages[0].content == "A\n\nB"
    assert [m.role for m in parse(system="").messages] == ["user"]  # an empty one is left out


def test_tool_use_and_tool_result_blocks_become_calls_and_tool_messages() -> None:
    """An assistant tool_use block is a tool call; the user's tool_result answers it as a tool
    message, before the turn's text."""
    messages = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "w", "input": {"city": "Paris"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
                {"type": "text", "text": "Thanks"},
            ],
        },
    ]
    msg = parse(messages=messages)
    assistant, tool, user = msg.messages[1:]
    assert assistant.tool_calls[0] == pb.ToolCall(
        id="toolu_1", name="w", arguments='{"city":"Paris"}'
    )
    assert tool.role == "tool" and tool.tool_call_id == "toolu_1" and tool.content == "sunny"
    assert user.role == "user" and user.content == "Thanks"


def test_tools_choice_stop_and_sampling_fields_are_taken() -> None:
    """tools, tool_choice (any -> required, disable_parallel_tool_use), stop_sequences,
    temperature, top_p and metadata.user_id reach the request."""
    tool = {"name": "w", "description": "d", "input_schema": {"type": "object"}}
    msg = parse(
        tools=[tool],
        tool_choice={"type": "any", "disable_parallel_tool_use": True},
        stop_sequences=["END"],
        temperature=0.2,
        top_p=0.9,
        metadata={"user_id": "u1"},
    )
    assert msg.tools[0] == pb.Tool(name="w", description="d", parameters='{"type":"object"}')
    assert msg.tool_choice.mode == "required" and msg.parallel_tool_calls is False
    assert list(msg.stop) == ["END"] and msg.metadata["user_id"] == "u1"
    assert abs(msg.temperature - 0.2) < 1e-6 and abs(msg.top_p - 0.9) < 1e-6
    named = parse(tools=[tool], tool_choice={"type": "tool", "name": "w"})
    assert named.tool_choice == pb.ToolChoice(mode="tool", name="w")


def test_a_base64_image_block_carries_its_bytes() -> None:
    """An image block's base64 data is decoded into the part's bytes with its media type."""
    data = base64.b64encode(b"\x89PNG").decode()
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}}
    content = [image, {"type": "text", "text": "What is it?"}]
    (part, text) = parse(messages=[{"role": "user", "content": content}]).messages[0].parts
    assert part.image_data == b"\x89PNG" and part.media_type == "image/png"
    assert text.text == "What is it?"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"max_tokens": None}, "max_tokens"),
        ({"thinking": {"type": "enabled", "budget_tokens": 1024}}, "thinking"),
        ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools[0].type"),
        (
            {"messages": [{"role": "user", "content": [{"type": "document"}]}]},
            "messages[0].content[0].type",
        ),
        ({"messages": [{"role": "system", "content": "x"}]}, "messages[0].role"),
        ({"tool_choice": {"type": "sometimes"}}, "tool_choice.type"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image",
                                "source": {
                                    "type": "base64",
                                    "media_type": "image/png",
                                    "data": "%%",
                                },
                            }
                        ],
                    }
                ]
            },
            "messages[0].content[0].source.data",
        ),
        ({"stream": "yes"}, "stream"),
        ({"system": "S", "messages": []}, "messages"),
        ({"tools": [{"name": "w", "input_schema": '{"type":"object"}'}]}, "tools[0].input_schema"),
        (
            {
                "messages": [
                    {"role": "user", "content": "hi"},
                    {
                        "role": "assistant",
                        "content": [{"type": "tool_use", "id": "t", "name": "w", "input": "{}"}],
                    },
                ]
            },
            "messages[1].content[0].input",
        ),
        ({"tool_choice": {"type": "any"}}, "tool_choice.type"),
        ({"system": [{"type": "text", "text": ""}] * 65}, "system"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "tool_result",
                                "tool_use_id": "t",
                                "content": [{"type": "text", "text": ""}] * 65,
                            }
                        ],
                    }
                ]
            },
            "messages[0].content[0].content",
        ),
    ],
)
def test_bad_bodies_name_the_field(body: dict[str, Any], field: str) -> None:
    """Each malformed or unsupported field is an InvalidArgument naming it."""
    fields = {"model": "auto", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    fields.update(body)
    if fields["max_tokens"] is None:
        del fields["max_tokens"]
    with pytest.raises(InvalidArgument) as err:
        FACE.parse(fields)
    assert err.value.field == field


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
