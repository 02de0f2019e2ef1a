"""A Request as an Anthropic Messages body (backends/anthropic_messages.py): every agent field."""

from __future__ import annotations

import base64
import json

import pytest

from backends.anthropic_messages import ANSWER_DESCRIPTION, anthropic_fields, to_anthropic
from router.core.errors import InvalidArgument
from router.core.types import (
    ChatMessage,
    ContentPart,
    Request,
    ResponseFormat,
    ToolCall,
    ToolChoice,
    ToolSpec,
)

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
WEATHER = ToolSpec("get_weather", "The weather in a city.", json.dumps(SCHEMA))
CLOCK = ToolSpec("get_time")
PNG = b"\x89PNG\r\n\x1a\n fake"
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": SCHEMA,
}


def request(*messages: ChatMessage, **fields) -> Request:
    return Request("req-1", "t", messages or (ChatMessage("user", "hi"),), 16, 0.5, **fields)


def test_tool_calls_and_results_become_blocks_and_turns_merge():
    """Calls are tool_use blocks with parsed input, tool messages tool_result blocks in a user
    turn that merges with the user text after them (results first)."""
    calls = (
        ToolCall("toolu_1", "get_weather", '{"city": "Paris"}'),
        ToolCall("toolu_2", "get_weather", '{"city": "Rome"}'),
    )
    system, turns = to_anthropic(
        [
            ChatMessage("system", "Be brief."),
            ChatMessage("user", "Weather in Paris and Rome?"),
            ChatMessage("assistant", "Checking.", tool_calls=calls),
            ChatMessage("tool", "sunny", tool_call_id="toolu_1"),
            ChatMessage("tool", "rainy", tool_call_id="toolu_2"),
            ChatMessage("user", "Thanks, and tomorrow?"),
        ]
    )
    assert system == "Be brief."
    assert turns == [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
                {
                    "type": "tool_use",
                    "id": "toolu_2",
                    "name": "get_weather",
                    "input": {"city": "Rome"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "rainy"},
                {"type": "text", "text": "Thanks, and tomorrow?"},
            ],
        },
    ]


def test_tool_results_come_first_in_their_turn():
    """User text merged before a tool result still follows it, as the API requires."""
    _, turns = to_anthropic(
        [
            ChatMessage("assistant", "", tool_calls=(ToolCall("toolu_1", "get_time", "{}"),)),
            ChatMessage("user", "(waiting)"),
            ChatMessage("tool", "noon", tool_call_id="toolu_1"),
        ]
    )
    assert turns[0]["content"] == [
        {"type": "tool_use", "id": "toolu_1", "name": "get_time", "input": {}}
    ]
    assert turns[1]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "noon"},
        {"type": "text", "text": "(waiting)"},
    ]


def test_images_as_base64_or_url_sources():
    """Image bytes and data: URLs become base64 sources with their media type; http(s) URLs
    become url sources; images in a tool result go inside its content."""
    data_url = "data:image/jpeg;base64," + base64.b64encode(b"jpg").decode()
    parts = (
        ContentPart("image", data=PNG, media_type="image/png"),
        ContentPart("image", url=data_url),
        ContentPart("image", url="https://example.com/a.webp"),
    )
    _, turns = to_anthropic(
        [
            ChatMessage("user", "What are these?", parts=parts),
            ChatMessage("assistant", "", tool_calls=(ToolCall("toolu_1", "snap", "{}"),)),
            ChatMessage(
                "tool",
                "",
                parts=(ContentPart("image", url="https://e.com/s.png"),),
                tool_call_id="toolu_1",
            ),
        ]
    )
    png = base64.b64encode(PNG).decode()
    assert turns[0]["content"] == [
        {"type": "text", "text": "What are these?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "anBn"}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.webp"}},
    ]
    assert turns[2]["content"] == [
        {
            "type": "tool_result",
            "tool_use_id": "toolu_1",
            "content": [{"type": "image", "source": {"type": "url", "url": "https://e.com/s.png"}}],
        }
    ]


def test_an_image_in_a_system_message_is_refused_naming_the_part():
    """`system` takes text only: an image there is InvalidArgument naming the part."""
    msg = ChatMessage("system", "s", parts=(ContentPart("image", url="https://e.com/a.png"),))
    with pytest.raises(InvalidArgument) as info:
        to_anthropic([ChatMessage("user", "u"), msg])
    assert info.value.field == "messages[1].parts[0]"


@pytest.mark.parametrize(
    ("choice", "parallel", "sent"),
    [
        (ToolChoice("auto"), None, {"type": "auto"}),
        (ToolChoice("required"), None, {"type": "any"}),
        (ToolChoice("tool", "get_weather"), None, {"type": "tool", "name": "get_weather"}),
        (ToolChoice("none"), None, {"type": "none"}),
        (ToolChoice("auto"), False, {"type": "auto", "disable_parallel_tool_use": True}),
        (ToolChoice("required"), False, {"type": "any", "disable_parallel_tool_use": True}),
        (ToolChoice("none"), False, {"type": "none"}),
        (ToolChoice("auto"), True, {"type": "auto"}),
    ],
)
def test_tools_and_tool_choice(choice, parallel, sent):
    """Tools are {name, description, input_schema}; each choice mode as the API names it, with
    disable_parallel_tool_use when parallel calls are off."""
    body, answer = anthropic_fields(
        request(tools=(WEATHER, CLOCK), tool_choice=choice, parallel_tool_calls=parallel)
    )
    assert body["tools"] == [
        WEATHER_TOOL,
        {"name": "get_time", "input_schema": json.loads(CLOCK.parameters)},
    ]
    assert body["tool_choice"] == sent and answer is None


def test_sampling_fields_seed_dropped_and_temperature_clamped():
    """stop -> stop_sequences, top_p as is, seed left out (no such field), temperature in [0, 1]."""
    body, _ = anthropic_fields(
        Request("r", "t", (ChatMessage("user", "u"),), 8, 1.6, stop=("END",), top_p=0.8, seed=3)
    )
    assert body == {
        "messages": [{"role": "user", "content": "u"}],
        "stop_sequences": ["END"],
        "temperature": 1.0,
        "top_p": 0.8,
    }


def test_json_schema_is_a_forced_answer_tool():
    """A json_schema format is a synthetic tool named after it that the model must call."""
    fmt = ResponseFormat("json_schema", "city", json.dumps(SCHEMA), True)
    body, answer = anthropic_fields(request(response_format=fmt))
    assert answer == "city"
    assert body["tools"] == [
        {"name": "city", "description": ANSWER_DESCRIPTION, "input_schema": SCHEMA}
    ]
    assert body["tool_choice"] == {"type": "tool", "name": "city"}


def test_json_object_offers_an_answer_tool_taking_any_object():
    """json_object's answer tool takes any object."""
    body, answer = anthropic_fields(request(response_format=ResponseFormat("json_object")))
    assert answer == "response" and body["tools"][0]["input_schema"] == {"type": "object"}


def test_json_format_with_tools_lets_the_model_call_a_tool_or_answer():
    """With tools under auto the choice is `any` of the tools and the answer tool, whose name is
    kept apart from the offered ones; under none only the answer tool is offered."""
    fmt = ResponseFormat("json_schema", "get_weather", json.dumps(SCHEMA))
    body, answer = anthropic_fields(request(tools=(WEATHER,), response_format=fmt))
    assert answer == "answer_get_weather"
    assert [t["name"] for t in body["tools"]] == ["get_weather", "answer_get_weather"]
    assert body["tool_choice"] == {"type": "any"}
    body, answer = anthropic_fields(
        request(tools=(WEATHER,), tool_choice=ToolChoice("none"), response_format=fmt)
    )
    assert [t["name"] for t in body["tools"]] == [answer]
    assert body["tool_choice"] == {"type": "tool", "name": answer}


def test_a_non_object_schema_is_refused_on_anthropic():
    """A tool's input is an object, so an array schema cannot be asked for: InvalidArgument."""
    fmt = ResponseFormat("json_schema", "list", json.dumps({"type": "array"}))
    with pytest.raises(InvalidArgument) as info:
        anthropic_fields(request(response_format=fmt))
    assert info.value.field == "response_format.schema"
