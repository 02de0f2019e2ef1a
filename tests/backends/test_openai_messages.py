"""A Request as a Chat Completions body (backends/openai_messages.py): every agent field."""

from __future__ import annotations

import base64
import json

import pytest

from backends.openai_messages import openai_fields, openai_message
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


def request(*messages: ChatMessage, **fields) -> Request:
    return Request("req-1", "t", messages or (ChatMessage("user", "hi"),), 16, 0.5, **fields)


def test_plain_messages_keep_string_content():
    """Text-only messages stay {role, content} strings, text parts joined into the content."""
    body = openai_fields(
        request(
            ChatMessage("system", "Be brief."),
            ChatMessage("user", "Look:", parts=(ContentPart("text", text="more"),)),
            ChatMessage("assistant", "Sure."),
        )
    )
    assert body == {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Look:\n\nmore"},
            {"role": "assistant", "content": "Sure."},
        ]
    }


def test_user_images_become_content_parts_in_order():
    """A user message with images is a list of parts: content first, then its parts; bytes
    become a base64 data: URL with their media type, URLs pass as they are."""
    parts = (
        ContentPart("image", url="https://example.com/cat.png"),
        ContentPart("text", text="and"),
        ContentPart("image", data=PNG, media_type="image/png"),
    )
    [msg] = openai_fields(request(ChatMessage("user", "What is this?", parts=parts)))["messages"]
    encoded = base64.b64encode(PNG).decode()
    assert msg == {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
            {"type": "text", "text": "and"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{encoded}"}},
        ],
    }


def test_assistant_tool_calls_and_tool_results():
    """Assistant calls are {id, type: function, function: {name, arguments}} with null content;
    a tool message carries its tool_call_id."""
    call = ToolCall("call_1", "get_weather", '{"city": "Paris"}')
    body = openai_fields(
        request(
            ChatMessage("user", "Weather?"),
            ChatMessage("assistant", "", tool_calls=(call,)),
            ChatMessage("tool", "sunny", tool_call_id="call_1"),
        )
    )
    assert body["messages"][1:] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "content": "sunny", "tool_call_id": "call_1"},
    ]


def test_llama_cpp_python_dialect_sends_empty_assistant_content_as_a_string():
    """llama-cpp-python's templates concatenate content, so a call-only message has content ""."""
    call = ToolCall("call_1", "get_weather", "{}")
    msg = openai_message(ChatMessage("assistant", "", tool_calls=(call,)), 1, "llama_cpp_python")
    assert msg["content"] == ""


@pytest.mark.parametrize(
    ("role", "where"), [("system", "system messages"), ("tool", "tool results")]
)
def test_images_where_openai_takes_none_are_refused_naming_the_part(role, where):
    """An image in a system message or a tool result is InvalidArgument naming the part."""
    parts = (ContentPart("text", text="x"), ContentPart("image", url="https://e.com/a.png"))
    msg = ChatMessage(role, "c", parts=parts, tool_call_id="call_1" if role == "tool" else "")
    with pytest.raises(InvalidArgument) as info:
        openai_fields(request(ChatMessage("user", "u"), msg))
    assert info.value.field == "messages[1].parts[1]" and where in info.value.reason


def test_tools_choice_and_parallel_calls():
    """Tools become functions with parsed parameters (no empty description); parallel_tool_calls
    goes only when set."""
    body = openai_fields(request(tools=(WEATHER, CLOCK), parallel_tool_calls=False))
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "The weather in a city.",
                "parameters": SCHEMA,
            },
        },
        {
            "type": "function",
            "function": {"name": "get_time", "parameters": json.loads(CLOCK.parameters)},
        },
    ]
    assert body["tool_choice"] == "auto" and body["parallel_tool_calls"] is False
    assert "parallel_tool_calls" not in openai_fields(request(tools=(WEATHER,)))
    assert "tools" not in openai_fields(request()) and "tool_choice" not in openai_fields(request())


@pytest.mark.parametrize(
    ("choice", "dialect", "sent"),
    [
        (ToolChoice("none"), "openai", "none"),
        (ToolChoice("required"), "openai", "required"),
        (
            ToolChoice("tool", "get_weather"),
            "openai",
            {"type": "function", "function": {"name": "get_weather"}},
        ),
        (
            ToolChoice("required"),
            "llama_cpp_python",
            {"type": "function", "function": {"name": "get_weather"}},
        ),
    ],
)
def test_tool_choice_modes(choice, dialect, sent):
    """Each tool_choice mode as OpenAI names it; llama_cpp_python makes `required` with one tool
    that tool's named choice."""
    assert (
        openai_fields(request(tools=(WEATHER,), tool_choice=choice), dialect)["tool_choice"] == sent
    )


def test_required_with_several_tools_is_refused_on_llama_cpp_python():
    """llama_cpp.server would answer `required` over two tools in text, so it is refused naming
    tool_choice.mode; OpenAI takes it as it is."""
    req = request(tools=(WEATHER, CLOCK), tool_choice=ToolChoice("required"))
    with pytest.raises(InvalidArgument) as info:
        openai_fields(req, "llama_cpp_python")
    assert info.value.field == "tool_choice.mode" and "named tool" in info.value.reason
    assert openai_fields(req)["tool_choice"] == "required"


def test_response_formats_per_dialect():
    """json_object as is; json_schema as {type: json_schema, json_schema: {name, schema, strict}}
    for OpenAI and {type: json_object, schema} for llama_cpp_python."""
    fmt = ResponseFormat("json_schema", "city", json.dumps(SCHEMA), True)
    assert openai_fields(request(response_format=fmt))["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "city", "schema": SCHEMA, "strict": True},
    }
    assert openai_fields(request(response_format=fmt), "llama_cpp_python")["response_format"] == {
        "type": "json_object",
        "schema": SCHEMA,
    }
    assert openai_fields(request(response_format=ResponseFormat("json_object")))[
        "response_format"
    ] == {"type": "json_object"}
    assert "response_format" not in openai_fields(request())


def test_sampling_fields_only_when_set():
    """stop, top_p and seed are sent when the request sets them, and left out otherwise."""
    body = openai_fields(request(stop=("END", "\n\n"), top_p=0.9, seed=7))
    assert body["stop"] == ["END", "\n\n"] and body["top_p"] == 0.9 and body["seed"] == 7
    assert {"stop", "top_p", "seed"}.isdisjoint(openai_fields(request()))
