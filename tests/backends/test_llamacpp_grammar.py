"""Edge grammars and output streaming: GBNF built from schemas and tools, the call parser, the
stop filter, and JSON outputs of the real SmolLM2 that validate against their schemas."""

from __future__ import annotations

import json

import pytest

from backends.llamacpp import LlamaCppBackend, LlamaCppConfig
from backends.llamacpp_grammar import grammar_text
from backends.llamacpp_stream import CallParser, StopFilter
from router.core import json_schema
from router.core.backend import Finish, TextDelta, ToolCallDelta
from router.core.types import AUTO, TEXT, ChatMessage, Request, ResponseFormat, ToolChoice, ToolSpec
from tests.conftest import SMOLLM2

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 24},
        "age": {"type": "integer"},
        "color": {"enum": ["red", "green", "blue"]},
    },
    "required": ["name", "age", "color"],
}
WEATHER = ToolSpec(
    "get_weather",
    "The weather in a city.",
    json.dumps(
        {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    ),
)
CLOCK = ToolSpec(
    "get_time",
    "The current time in a timezone.",
    json.dumps(
        {"type": "object", "properties": {"timezone": {"type": "string"}}, "required": ["timezone"]}
    ),
)


@pytest.fixture
async def backend():
    b = LlamaCppBackend(
        "edge",
        LlamaCppConfig(type="llamacpp", model="m", gguf=SMOLLM2, context_window=1024, threads=2),
    )
    await b.start()
    yield b
    await b.aclose()


def feed_all(parser: CallParser, chunks: list[str]) -> tuple[str, list[ToolCallDelta]]:
    text, calls = "", []
    for chunk in chunks:
        t, c = parser.feed(chunk)
        text += t
        calls += c
    return text + parser.flush(), calls


def test_call_parser_streams_id_and_name_first_then_arguments_by_the_character():
    """Two calls split at awkward places give, per call, one id+name fragment then argument
    fragments that join to exactly the arguments' JSON (braces in strings not miscounted)."""
    out = (
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Par}is"} }\n</tool_call>\n'
        '<tool_call>\n{"name": "get_time", "arguments": {"timezone": "UTC"}}\n</tool_call>'
    )
    for size in (1, 3, 7, len(out)):
        text, calls = feed_all(
            CallParser("request-id-0123456789", False),
            [out[i : i + size] for i in range(0, len(out), size)],
        )
        assert text == ""
        firsts = [c for c in calls if c.name]
        assert [(c.index, c.id, c.name) for c in firsts] == [
            (0, "call_request-id-01234_0", "get_weather"),
            (1, "call_request-id-01234_1", "get_time"),
        ]
        assert calls[0] == firsts[0] and not any(c.arguments for c in firsts)
        args = ["".join(c.arguments for c in calls if c.index == i) for i in (0, 1)]
        assert args == ['{"city": "Par}is"}', '{"timezone": "UTC"}']


def test_call_parser_passes_text_through_under_auto_and_holds_a_partial_marker():
    """Under auto, text that leaves the marker is passed on whole; a marker's start that ends
    the answer is given back as text by flush; no fragments either way."""
    assert feed_all(CallParser("r", True), ["<", "b>hi"]) == ("<b>hi", [])
    assert feed_all(CallParser("r", True), ["Hello ", "<tool_call> is a tag"]) == (
        "Hello <tool_call> is a tag",
        [],
    )
    assert feed_all(CallParser("r", True), ["<tool"]) == ("<tool", [])


def test_stop_filter_cuts_before_the_stop_and_holds_back_a_possible_prefix():
    """A stop sequence split across pieces is found, nothing from it on is sent, and a held
    prefix that turns out not to be a stop is sent later unchanged."""
    f = StopFilter(("END", "xyz"))
    assert [f.feed(p) for p in ["abc E", "N", "Dmore"]] == ["abc ", "", ""] and f.stopped
    g = StopFilter(("END",))
    assert [g.feed(p) for p in ["a E", "Nx"]] == ["a ", "ENx"] and not g.stopped
    h = StopFilter(("END",))
    assert h.feed("tail EN") == "tail " and h.flush() == "EN"


def test_tool_grammars_follow_the_choice_and_parallel_setting():
    """required offers every tool, a named choice only its tool, auto without a format is
    unconstrained until a call begins, none has no grammar, and parallel True repeats calls."""
    tools = (WEATHER, CLOCK)
    required = grammar_text(tools, ToolChoice("required"), None, TEXT)
    named = grammar_text(tools, ToolChoice("tool", "get_time"), None, TEXT)
    assert required and '\\"get_weather\\"' in required and '\\"get_time\\"' in required
    assert named and '\\"get_time\\"' in named and "get_weather" not in named
    assert "root ::= call\n" in required + "\n"  # one call unless parallel_tool_calls is True
    assert '("\\n" call' in (grammar_text(tools, ToolChoice("required"), True, TEXT) or "")
    assert grammar_text(tools, AUTO, None, TEXT) is None
    assert grammar_text(tools, ToolChoice("none"), None, TEXT) is None
    opened = grammar_text(tools, AUTO, None, TEXT, opened=11) or ""
    assert 'first-call ::= "\\n{\\"name\\": "' in opened  # the rest after "<tool_call>"


def test_a_schema_the_converter_refuses_falls_back_to_any_object():
    """A response schema beyond the converter (`not`) still gets a grammar: any JSON object."""
    fmt = ResponseFormat("json_schema", "x", json.dumps({"not": {"type": "string"}}), True)
    text = grammar_text((), AUTO, None, fmt)
    assert text and "root ::= response" in text and "object ::=" in text


async def test_json_schema_output_validates_against_its_schema(backend):
    """The edge model's strict json_schema output (required string, integer and enum fields)
    parses and validates with the router's validator, at temperature 0 and with sampling."""
    fmt = ResponseFormat("json_schema", "person", json.dumps(PERSON), True)
    schema = json_schema.parse_schema(fmt.schema)
    for temperature, seed in ((0.0, None), (0.8, 1)):
        req = Request(
            "r",
            "t",
            (ChatMessage("user", "Describe a person."),),
            96,
            temperature,
            response_format=fmt,
            seed=seed,
        )
        events = [e async for e in backend.generate(req)]
        *deltas, finish = events
        text = "".join(d.text for d in deltas if isinstance(d, TextDelta))
        assert isinstance(finish, Finish) and finish.finish_reason == "stop", text
        assert json_schema.validates(schema, text), text
        assert json.loads(text)["color"] in ("red", "green", "blue")


async def test_json_object_output_is_a_json_object(backend):
    """json_object asks for any JSON object: the output parses as one."""
    req = Request(
        "r",
        "t",
        (ChatMessage("user", "Give the capital of France."),),
        64,
        0.0,
        response_format=ResponseFormat("json_object"),
    )
    events = [e async for e in backend.generate(req)]
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert events[-1].finish_reason == "stop" and isinstance(json.loads(text), dict), text
