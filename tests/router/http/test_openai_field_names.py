"""Field names in errors: router/api/convert.py's checks name the gRPC message's fields, and the
OpenAI face gives them back in the Chat Completions body's terms."""

from __future__ import annotations

from typing import Any

import pytest

from router.api.convert import request_from_pb
from router.core.errors import InvalidArgument
from router.http.openai_request import openai_field, parse_request
from tests.router.http.test_openai_request import CONFIG, body


@pytest.mark.parametrize(
    ("pb_field", "field"),
    [
        ("messages[2].parts[1]", "messages[2].content[1]"),
        ("messages[2].parts[1].type", "messages[2].content[1].type"),
        ("messages[2].parts[1].image_url", "messages[2].content[1].image_url.url"),
        ("messages[0].tool_calls[3].name", "messages[0].tool_calls[3].function.name"),
        ("messages[0].tool_calls[3].arguments", "messages[0].tool_calls[3].function.arguments"),
        ("messages[0].tool_calls[3].id", "messages[0].tool_calls[3].id"),
        ("tools[4].name", "tools[4].function.name"),
        ("tools[4].parameters", "tools[4].function.parameters"),
        ("tool_choice.mode", "tool_choice"),
        ("tool_choice.name", "tool_choice.function.name"),
        ("response_format.schema", "response_format.json_schema.schema"),
        ("response_format.type", "response_format.type"),
        ("temperature", "temperature"),
        ("messages[1].tool_call_id", "messages[1].tool_call_id"),
    ],
)
def test_convert_field_names_read_in_openai_terms(pb_field: str, field: str) -> None:
    """The gRPC message's field names that router/api/convert.py reports map to the body's."""
    assert openai_field(pb_field) == field


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        (
            {"tools": [{"type": "function", "function": {"name": "bad name"}}]},
            "tools[0].function.name",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}],
                    }
                ]
            },
            "messages[0].content[0].image_url.url",
        ),
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "x", "schema": {"type": 5}},
                }
            },
            "response_format.json_schema.schema",
        ),
    ],
)
def test_errors_of_the_shared_checks_name_the_openai_field(
    fields: dict[str, Any], field: str
) -> None:
    """A value that parses but fails router/api/convert.py's checks gets, renamed, the body's
    field name."""
    msg, *_ = parse_request(body(**fields))
    with pytest.raises(InvalidArgument) as err:
        request_from_pb(msg, CONFIG)
    assert openai_field(err.value.field) == field
