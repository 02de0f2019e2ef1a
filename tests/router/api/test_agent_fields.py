"""Agent fields at the door: tools, calls, results, parts and formats are validated by field."""

from __future__ import annotations

import json

import pytest

from router.api import router_pb2 as pb
from router.api.convert import request_from_pb
from router.config import load_config
from router.core.errors import InvalidArgument
from router.core.types import IMAGE_TOKENS

CONFIG = load_config(None).config
OBJ = json.dumps({"type": "object", "properties": {"q": {"type": "string"}}})
USER = pb.Message(role="user", content="hi")
CALL = pb.Message(
    role="assistant", tool_calls=[pb.ToolCall(id="c1", name="search", arguments='{"q": "x"}')]
)


def req(*messages: pb.Message, **fields) -> pb.GenerateRequest:
    return pb.GenerateRequest(messages=list(messages) or [USER], **fields)


def test_a_full_agent_turn_converts_with_implied_features():
    """Tools, a call, its result, an image and a schema come through and imply their features."""
    image = pb.ContentPart(type="image", image_url="https://example.com/a.png")
    msg = req(
        pb.Message(role="user", content="look", parts=[image]),
        CALL,
        pb.Message(role="tool", tool_call_id="c1", content="found it"),
        tools=[pb.Tool(name="search", description="web", parameters=OBJ)],
        tool_choice=pb.ToolChoice(mode="tool", name="search"),
        response_format=pb.ResponseFormat(type="json_schema", name="out", schema=OBJ, strict=True),
        stop=["END", "END"],
        top_p=0.5,
        seed=3,
    )
    r = request_from_pb(msg, CONFIG)
    assert r.features == ("tools", "json_schema", "vision")
    assert r.messages[1].tool_calls[0].arguments == '{"q": "x"}'
    assert r.messages[2].tool_call_id == "c1" and r.tool_choice.name == "search"
    assert r.response_format.strict and r.stop == ("END",) and r.top_p == 0.5 and r.seed == 3
    assert r.images == 1 and IMAGE_TOKENS > 0
    assert "found it" in r.texts() and OBJ in r.texts() and '{"q": "x"}' in r.texts()


BAD_TOOLS = [
    ([pb.Tool(name="bad name")], "tools[0].name"),
    ([pb.Tool(name="a" * 65)], "tools[0].name"),
    ([pb.Tool(name="t"), pb.Tool(name="t")], "tools[1].name"),
    (
        [pb.Tool(name="t"), pb.Tool(name="u"), pb.Tool(name="v", parameters="{nope")],
        "tools[2].parameters",
    ),
    ([pb.Tool(name="t", parameters='{"type": "nonsense"}')], "tools[0].parameters"),
    ([pb.Tool(name="t", parameters='{"type": "string"}')], "tools[0].parameters"),
    ([pb.Tool(name="t", parameters='{"pattern": "(a+)+\\\\1"}')], "tools[0].parameters"),
    (
        [pb.Tool(name="t", parameters='{"$ref": "https://evil.example/s.json"}')],
        "tools[0].parameters",
    ),
    ([pb.Tool(name=f"t{i}") for i in range(129)], "tools"),
]


@pytest.mark.parametrize(("tools", "field"), BAD_TOOLS)
def test_bad_tools_are_refused_naming_the_field(tools, field):
    """Bad names, duplicates, non-JSON-Schema, backreferences, remote refs and too many tools."""
    with pytest.raises(InvalidArgument) as err:
        request_from_pb(req(tools=tools), CONFIG)
    assert err.value.field == field


BAD_MESSAGES = [
    ((USER, pb.Message(role="tool", tool_call_id="zz", content="x")), "messages[1].tool_call_id"),
    ((USER, pb.Message(role="tool", content="x")), "messages[1].tool_call_id"),
    ((USER, pb.Message(role="user", content="x", tool_call_id="c1")), "messages[1].tool_call_id"),
    (
        (pb.Message(role="user", tool_calls=[pb.ToolCall(id="c", name="t")]),),
        "messages[0].tool_calls",
    ),
    (
        (pb.Message(role="assistant", tool_calls=[pb.ToolCall(id="c", name="t", arguments="{x")]),),
        "messages[0].tool_calls[0].arguments",
    ),
    (
        (
            pb.Message(
                role="assistant", tool_calls=[pb.ToolCall(id="c", name="t", arguments="[1]")]
            ),
        ),
        "messages[0].tool_calls[0].arguments",
    ),
    (
        (pb.Message(role="assistant", tool_calls=[pb.ToolCall(name="t")]),),
        "messages[0].tool_calls[0].id",
    ),
    ((CALL, CALL), "messages[1].tool_calls[0].id"),
    ((pb.Message(role="user", parts=[pb.ContentPart(type="video")]),), "messages[0].parts[0].type"),
    (
        (
            pb.Message(
                role="user", parts=[pb.ContentPart(type="image", image_url="file:///etc/passwd")]
            ),
        ),
        "messages[0].parts[0].image_url",
    ),
    (
        (
            pb.Message(
                role="user",
                parts=[pb.ContentPart(type="image", image_data=b"x", media_type="text/html")],
            ),
        ),
        "messages[0].parts[0].media_type",
    ),
    (
        (pb.Message(role="user", parts=[pb.ContentPart(type="text", text="x")] * 65),),
        "messages[0].parts",
    ),
]


@pytest.mark.parametrize(("messages", "field"), BAD_MESSAGES)
def test_bad_messages_are_refused_naming_the_field(messages, field):
    """Orphan or misplaced tool results, bad calls, bad parts and too many parts are named."""
    with pytest.raises(InvalidArgument) as err:
        request_from_pb(req(*messages), CONFIG)
    assert err.value.field == field


BAD_FIELDS = [
    ({"tool_choice": pb.ToolChoice(mode="sometimes")}, "tool_choice.mode"),
    ({"tool_choice": pb.ToolChoice(mode="required")}, "tool_choice.mode"),
    (
        {"tool_choice": pb.ToolChoice(mode="tool", name="x"), "tools": [pb.Tool(name="t")]},
        "tool_choice.name",
    ),
    ({"response_format": pb.ResponseFormat(type="yaml")}, "response_format.type"),
    ({"response_format": pb.ResponseFormat(type="json_schema")}, "response_format.schema"),
    (
        {"response_format": pb.ResponseFormat(type="json_schema", schema="[]")},
        "response_format.schema",
    ),
    (
        {"response_format": pb.ResponseFormat(type="json_schema", name="a b", schema=OBJ)},
        "response_format.name",
    ),
    (
        {"response_format": pb.ResponseFormat(type="json_object", schema=OBJ)},
        "response_format.schema",
    ),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"stop": [""]}, "stop[0]"),
    ({"stop": ["x" * 257]}, "stop[0]"),
    ({"top_p": 0.0}, "top_p"),
    ({"top_p": 1.5}, "top_p"),
]


@pytest.mark.parametrize(("fields", "field"), BAD_FIELDS)
def test_bad_agent_fields_are_refused_naming_the_field(fields, field):
    """Unknown modes and types, missing schemas, long or many stops and top_p out of range."""
    with pytest.raises(InvalidArgument) as err:
        request_from_pb(req(**fields), CONFIG)
    assert err.value.field == field


def test_tool_definitions_count_toward_the_prompt_size_limit():
    """Characters of tool definitions count toward limits.max_prompt_chars like message text."""
    limit = CONFIG.limits.max_prompt_chars
    big = json.dumps({"type": "object", "description": "x" * (limit // 2)})
    with pytest.raises(InvalidArgument) as err:
        request_from_pb(
            req(tools=[pb.Tool(name="a", parameters=big), pb.Tool(name="b", parameters=big)]),
            CONFIG,
        )
    assert err.value.field == "tools" and "max_prompt_chars" in str(err.value)
