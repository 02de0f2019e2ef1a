"""Field names in errors on the Anthropic face: router/api/convert.py's real checks name the gRPC
message's fields, and the face gives them back in the Messages body's terms."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from router.api.convert import request_from_pb
from router.config import Config
from router.core.errors import InvalidArgument
from router.http.anthropic_face import AnthropicFace
from router.http.anthropic_names import Names, Origin

CONFIG = Config.model_validate({"backends": {"s": {"type": "scripted", "model": "m"}}})
PNG = base64.b64encode(b"\x89PNG").decode()
ASK = {"role": "user", "content": "hi"}
CALL = {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "w"}]}


def image(media_type: str = "image/png") -> dict[str, Any]:
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": PNG}}


def checked_field(**body: Any) -> str:
    """The field named by the error of parsing then checking `body`, as the driver renames it."""
    body = {"model": "auto", "max_tokens": 8, "messages": [ASK], **body}
    parsed = AnthropicFace().parse(body)
    with pytest.raises(InvalidArgument) as err:
        request_from_pb(parsed.request, CONFIG)
    assert parsed.rename is not None
    return parsed.rename(err.value.field)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {
                "messages": [
                    {"role": "user", "content": [image("image/bmp"), {"type": "text", "text": "x"}]}
                ]
            },
            "messages[0].content[0].source.media_type",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "look"},
                            {"type": "image", "source": {"type": "url", "url": "ftp://x/y.png"}},
                        ],
                    }
                ]
            },
            "messages[0].content[1].source.url",
        ),
        ({"messages": [ASK, {"role": "assistant", "content": [image()]}]}, "messages[1].content"),
        (
            {
                "system": "S",
                "messages": [
                    ASK,
                    CALL,
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "tool_result",
                                "tool_use_id": "t1",
                                "content": [{"type": "text", "text": "a"}, image("image/bmp")],
                            }
                        ],
                    },
                ],
            },
            "messages[2].content[0].content[1].source.media_type",
        ),
        (
            {"messages": [ASK, {**CALL, "content": [{**CALL["content"][0], "name": "a b"}]}]},
            "messages[1].content[0].name",
        ),
        ({"metadata": {"user_id": "x" * 10_000}}, "metadata.user_id"),
        ({"stop_sequences": ["ok", ""]}, "stop_sequences[1]"),
        ({"tools": [{"name": "w", "input_schema": {"type": "string"}}]}, "tools[0].input_schema"),
    ],
)
def test_checked_fields_are_named_in_messages_terms(body: dict[str, Any], field: str) -> None:
    """Each error of the shared checks names the body's own field (blocks, source, turns)."""
    assert checked_field(**body) == field


def test_a_tool_result_answering_nothing_names_its_tool_use_id_past_the_system_prompt() -> None:
    """The system prompt and the split tool results shift pb indexes; the name does not."""
    result = {"type": "tool_result", "tool_use_id": "nope", "content": "x"}
    messages = [ASK, CALL, {"role": "user", "content": [result]}]
    field = checked_field(system=[{"type": "text", "text": "S"}], messages=messages)
    assert field == "messages[2].content[0].tool_use_id"


def test_unknown_and_top_level_fields_keep_or_get_their_names() -> None:
    """tool_choice.mode is tool_choice.type; fields the face did not record come back as sent."""
    names = Names()
    names.add(Origin("messages[0]", "messages[0].content"))
    assert names("tool_choice.mode") == "tool_choice.type"
    assert names("temperature") == "temperature"
    assert names("messages[7].role") == "messages[7].role"
    assert names("messages[0].parts[3]") == "messages[0].content"
