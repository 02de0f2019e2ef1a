"""Parsing of Chat Completions bodies: every field read, and errors naming the field in OpenAI's
terms; the parsed request then passes router/api/convert.py's checks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from router.api.convert import request_from_pb
from router.config import Config
from router.core.errors import InvalidArgument
from router.http.openai_request import OpenAIOptions, parse_request

CONFIG = Config.model_validate({"backends": {"s": {"type": "scripted", "model": "m"}}})
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        "strict": True,
    },
}

DEEP: dict[str, Any] = {}
for _ in range(400):  # deeper than orjson encodes (it decodes up to 1024 levels)
    DEEP = {"type": "object", "properties": {"x": DEEP}}


def body(**fields: Any) -> dict[str, Any]:
    return {"model": "auto", "messages": [{"role": "user", "content": "hi"}], **fields}


def error(b: dict[str, Any]) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as err:
        parse_request(b)
    return err.value


def test_a_minimal_body_is_one_user_message_for_the_router_to_place() -> None:
    """`auto` is pb model "", the message is kept, stream is off and nothing else is set."""
    msg, stream, model, options = parse_request(body())
    assert msg.model == "" and model == "auto" and not stream
    assert [(m.role, m.content) for m in msg.messages] == [("user", "hi")]
    assert options == OpenAIOptions(include_usage=False)
    assert not msg.HasField("temperature") and not msg.HasField("tool_choice") and not msg.stop
    assert request_from_pb(msg, CONFIG).messages[0].content == "hi"


@pytest.mark.parametrize(("sent", "pb_model"), [("auto", ""), ("", ""), ("gpt-4o", "gpt-4o")])
def test_model_names_other_than_auto_are_passed_on(sent: str, pb_model: str) -> None:
    """`auto` and "" let the router decide; any other name restricts the request to it."""
    msg, _, model, _ = parse_request(body(model=sent))
    assert msg.model == pb_model and model == sent


def test_every_role_is_read_and_developer_is_system() -> None:
    """system, developer, user, assistant with tool calls and tool with its call id, `name`
    ignored; the result passes the gRPC checks (the tool message answers the call)."""
    call = {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    msg, *_ = parse_request(
        body(
            messages=[
                {"role": "system", "content": "be terse", "name": "ops"},
                {"role": "developer", "content": "really"},
                {"role": "user", "content": "weather?", "name": "ann"},
                {"role": "assistant", "content": None, "tool_calls": [call]},
                {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
            ],
            tools=[WEATHER],
        )
    )
    assert [m.role for m in msg.messages] == ["system", "system", "user", "assistant", "tool"]
    calls = msg.messages[3].tool_calls
    assert [(c.id, c.name, c.arguments) for c in calls] == [("c1", "get_weather", "{}")]
    assert msg.messages[4].tool_call_id == "c1" and msg.messages[4].content == "sunny"
    request = request_from_pb(msg, CONFIG)
    assert request.messages[3].tool_calls[0].name == "get_weather"


def test_content_parts_become_text_and_image_parts() -> None:
    """User text and image_url parts, assistant text and refusal parts, in order."""
    url = "data:image/png;base64,iVBORw0KGgo="
    msg, *_ = parse_request(
        body(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "what is this?"},
                        {"type": "image_url", "image_url": {"url": url, "detail": "low"}},
                    ],
                },
                {"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}]},
            ]
        )
    )
    user, assistant = msg.messages
    assert [(p.type, p.text, p.image_url) for p in user.parts] == [
        ("text", "what is this?", ""),
        ("image", "", url),
    ]
    assert [(p.type, p.text) for p in assistant.parts] == [("text", "no")]
    assert request_from_pb(msg, CONFIG).images == 1


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ("hi", "messages[0]"),
        ({"content": "hi"}, "messages[0].role"),
        ({"role": "function", "content": "x"}, "messages[0].role"),
        ({"role": "user"}, "messages[0].content"),
        ({"role": "user", "content": 3}, "messages[0].content"),
        ({"role": "user", "content": ["x"]}, "messages[0].content[0]"),
        ({"role": "user", "content": [{"type": "text", "text": 1}]}, "messages[0].content[0].text"),
        ({"role": "user", "content": [{"type": "input_audio"}]}, "messages[0].content[0].type"),
        ({"role": "user", "content": [{"type": "video"}]}, "messages[0].content[0].type"),
        (
            {"role": "user", "content": [{"type": "image_url", "image_url": "https://x"}]},
            "messages[0].content[0].image_url.url",
        ),
        (
            {"role": "system", "content": [{"type": "image_url", "image_url": {"url": "x"}}]},
            "messages[0].content[0].type",
        ),
        ({"role": "assistant", "tool_calls": {}}, "messages[0].tool_calls"),
        ({"role": "assistant", "tool_calls": [{"id": 1}]}, "messages[0].tool_calls[0].id"),
        (
            {"role": "assistant", "tool_calls": [{"id": "c", "type": "custom"}]},
            "messages[0].tool_calls[0].type",
        ),
        ({"role": "assistant", "tool_calls": [{"id": "c"}]}, "messages[0].tool_calls[0].function"),
        (
            {"role": "assistant", "tool_calls": [{"id": "c", "function": {"arguments": "{}"}}]},
            "messages[0].tool_calls[0].function.name",
        ),
        (
            {
                "role": "assistant",
                "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": 1}}],
            },
            "messages[0].tool_calls[0].function.arguments",
        ),
        ({"role": "tool", "content": "x", "tool_call_id": 5}, "messages[0].tool_call_id"),
    ],
)
def test_malformed_messages_name_the_field(message: Any, field: str) -> None:
    """Each wrong JSON type or shape in a message is a 400 naming the field as OpenAI does."""
    assert error(body(messages=[message])).field == field


def test_messages_must_be_a_list() -> None:
    """A missing or non-list `messages` names `messages`."""
    assert error({"model": "auto"}).field == "messages"
    assert error(body(messages={"role": "user"})).field == "messages"


def test_tools_tool_choice_and_parallel_calls_are_read() -> None:
    """A function tool's name, description and schema (as JSON text), a named tool choice and
    parallel_tool_calls reach the request and pass the gRPC checks."""
    choice = {"type": "function", "function": {"name": "get_weather"}}
    msg, *_ = parse_request(body(tools=[WEATHER], tool_choice=choice, parallel_tool_calls=False))
    (tool,) = msg.tools
    assert tool.name == "get_weather" and tool.description == "The weather in a city."
    assert json.loads(tool.parameters) == WEATHER["function"]["parameters"]
    assert (msg.tool_choice.mode, msg.tool_choice.name) == ("tool", "get_weather")
    assert msg.HasField("parallel_tool_calls") and not msg.parallel_tool_calls
    request = request_from_pb(msg, CONFIG)
    assert request.tool_choice.name == "get_weather" and request.tools[0].name == "get_weather"


@pytest.mark.parametrize("mode", ["auto", "none", "required"])
def test_string_tool_choices_are_modes(mode: str) -> None:
    """auto, none and required are the pb modes of the same name."""
    msg, *_ = parse_request(body(tools=[WEATHER], tool_choice=mode))
    assert msg.tool_choice.mode == mode and not msg.tool_choice.name
    if mode != "required":  # auto and none need no tools
        msg, *_ = parse_request(body(tool_choice=mode))
        assert msg.tool_choice.mode == mode


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"tools": {}}, "tools"),
        ({"tools": ["f"]}, "tools[0]"),
        ({"tools": [{"type": "custom"}]}, "tools[0].type"),
        ({"tools": [{"type": "function"}]}, "tools[0].function"),
        ({"tools": [{"type": "function", "function": {}}]}, "tools[0].function.name"),
        (
            {"tools": [{"type": "function", "function": {"name": "f", "description": 1}}]},
            "tools[0].function.description",
        ),
        (
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": "{}"}}]},
            "tools[0].function.parameters",
        ),
        (
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": DEEP}}]},
            "tools[0].function.parameters",
        ),
        ({"tool_choice": "any"}, "tool_choice"),
        ({"tool_choice": 1}, "tool_choice"),
        ({"tool_choice": {"type": "allowed_tools"}}, "tool_choice.type"),
        ({"tool_choice": {"type": "function"}}, "tool_choice.function.name"),
        ({"parallel_tool_calls": "yes"}, "parallel_tool_calls"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"tool_choice": {"type": "function", "function": {"name": "f"}}}, "tool_choice"),
        (
            {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "f"}}},
            "tool_choice.function.name",
        ),
    ],
)
def test_malformed_tools_name_the_field(fields: dict[str, Any], field: str) -> None:
    """Wrong shapes of tools and the tool choice are 400s naming the OpenAI field."""
    assert error(body(**fields)).field == field


def test_response_formats_are_read() -> None:
    """text, json_object and json_schema with its name, schema (as JSON text) and strict."""
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    spec = {"name": "thing", "schema": schema, "strict": True}
    msg, *_ = parse_request(body(response_format={"type": "json_schema", "json_schema": spec}))
    f = msg.response_format
    assert (f.type, f.name, f.strict) == ("json_schema", "thing", True)
    assert json.loads(f.schema) == schema
    assert request_from_pb(msg, CONFIG).response_format.name == "thing"
    for kind in ("text", "json_object"):
        msg, *_ = parse_request(body(response_format={"type": kind}))
        assert msg.response_format.type == kind and not msg.response_format.schema


@pytest.mark.parametrize(
    ("fmt", "field"),
    [
        ("json", "response_format"),
        ({"type": "yaml"}, "response_format.type"),
        ({"type": "json_schema"}, "response_format.json_schema"),
        (
            {"type": "json_schema", "json_schema": {"name": "x"}},
            "response_format.json_schema.schema",
        ),
        (
            {"type": "json_schema", "json_schema": {"name": 1, "schema": {}}},
            "response_format.json_schema.name",
        ),
        (
            {"type": "json_schema", "json_schema": {"schema": {}, "strict": "yes"}},
            "response_format.json_schema.strict",
        ),
    ],
)
def test_malformed_response_formats_name_the_field(fmt: Any, field: str) -> None:
    """Wrong shapes of response_format are 400s naming the OpenAI field."""
    assert error(body(response_format=fmt)).field == field


def test_sampling_fields_are_read() -> None:
    """temperature, top_p, seed, a string stop and a list of stops reach the request."""
    msg, *_ = parse_request(body(temperature=0.5, top_p=1, seed=-7, stop="END", max_tokens=9))
    assert msg.temperature == 0.5 and msg.top_p == 1.0 and msg.seed == -7
    assert list(msg.stop) == ["END"] and msg.max_tokens == 9
    msg, *_ = parse_request(body(stop=["a", "b"]))
    assert list(msg.stop) == ["a", "b"]
    request = request_from_pb(msg, CONFIG)
    assert request.stop == ("a", "b")


def test_max_completion_tokens_wins_over_max_tokens() -> None:
    """With both set, max_completion_tokens is the limit (the documented choice)."""
    msg, *_ = parse_request(body(max_tokens=100, max_completion_tokens=7))
    assert msg.max_tokens == 7
    msg, *_ = parse_request(body(max_completion_tokens=12))
    assert msg.max_tokens == 12


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"model": 4}, "model"),
        ({"max_tokens": "9"}, "max_tokens"),
        ({"max_tokens": True}, "max_tokens"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_completion_tokens": 2**40}, "max_completion_tokens"),
        ({"max_completion_tokens": 1.5}, "max_completion_tokens"),
        ({"temperature": "hot"}, "temperature"),
        ({"temperature": False}, "temperature"),
        ({"top_p": [1]}, "top_p"),
        ({"seed": 2**70}, "seed"),
        ({"seed": 1.0}, "seed"),
        ({"stop": 5}, "stop"),
        ({"stop": ["a", 5]}, "stop[1]"),
        ({"stream": "yes"}, "stream"),
        ({"stream_options": []}, "stream_options"),
        ({"stream_options": {"include_usage": 1}}, "stream_options.include_usage"),
        ({"metadata": ["a"]}, "metadata"),
        ({"metadata": {"k": 1}}, "metadata.'k'"),
        ({"user": 3}, "user"),
        ({"n": 2}, "n"),
        ({"functions": [{"name": "f"}]}, "functions"),
        ({"function_call": "auto"}, "function_call"),
        ({"audio": {"voice": "alloy"}}, "audio"),
        ({"prediction": {"type": "content"}}, "prediction"),
        ({"n": "1"}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"top_logprobs": 3}, "top_logprobs"),
    ],
)
def test_wrong_top_level_fields_name_the_field(fields: dict[str, Any], field: str) -> None:
    """A wrong JSON type, an out-of-range value or an unsupported option (n > 1, logprobs) is a
    400 naming the field."""
    err = error(body(**fields))
    assert err.field == field and err.reason


def test_unsupported_options_say_so() -> None:
    """n and logprobs errors say what is supported."""
    assert "only 1" in error(body(n=3)).reason
    assert "not supported" in error(body(logprobs=True)).reason


def test_stream_options_metadata_and_user() -> None:
    """stream and include_usage are the answer options; metadata is kept and `user` joins it
    unless metadata has a `user` of its own."""
    msg, stream, _, options = parse_request(
        body(stream=True, stream_options={"include_usage": True}, metadata={"app": "a"}, user="u1")
    )
    assert stream and options.include_usage
    assert dict(msg.metadata) == {"app": "a", "user": "u1"}
    msg, *_ = parse_request(body(metadata={"user": "mine"}, user="u1"))
    assert dict(msg.metadata) == {"user": "mine"}
    assert request_from_pb(msg, CONFIG).metadata == {"user": "mine"}


def test_allowed_defaults_and_unknown_fields_are_accepted() -> None:
    """n 1, logprobs false, nulls and fields this face does not know (new SDK fields) pass."""
    msg, *_ = parse_request(
        body(
            n=1,
            logprobs=False,
            top_logprobs=None,
            temperature=None,
            stop=None,
            frequency_penalty=0.1,
            service_tier="auto",
            stream_options=None,
        )
    )
    assert not msg.HasField("temperature") and not msg.stop


def test_errors_quote_client_text_briefly() -> None:
    """An unknown role of a megabyte is quoted in at most 40 characters."""
    err = error(body(messages=[{"role": "x" * 1_000_000, "content": "hi"}]))
    assert len(str(err)) < 200 and "1000000 characters" in str(err)
