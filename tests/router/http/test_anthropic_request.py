"""Anthropic Messages bodies into gRPC requests (router/http/anthropic_request.py): every field
taken, and the errors naming the body's fields."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from router.api import router_pb2 as pb
from router.core.errors import InvalidArgument
from router.http.anthropic_face import AnthropicFace

FACE = AnthropicFace()


def parse(**body: Any) -> pb.GenerateRequest:
    body.setdefault("model", "auto")
    body.setdefault("max_tokens", 16)
    body.setdefault("messages", [{"role": "user", "content": "hi"}])
    return FACE.parse(body).request


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


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"system": 3}, "system"),
        ({"messages": [{"role": "user"}]}, "messages[0].content"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "tool_result", "tool_use_id": "t", "content": {}}],
                    }
                ]
            },
            "messages[0].content[0].content",
        ),
    ],
)
def test_content_of_the_wrong_type_says_what_it_may_be(body: dict[str, Any], field: str) -> None:
    """A system prompt, a turn's or a tool result's content that is neither text nor a list of
    blocks is refused naming it and both allowed shapes."""
    fields = {"model": "auto", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    with pytest.raises(InvalidArgument) as err:
        FACE.parse({**fields, **body})
    assert err.value.field == field
    assert err.value.reason == "must be a string or an array of content blocks"


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
