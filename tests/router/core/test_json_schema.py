"""Client JSON Schemas: bounded at the door, validated in linear time."""

from __future__ import annotations

import json
import time

import pytest

from router.core.json_schema import MAX_DEPTH, parse_schema, validates

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "pattern": "^[A-Z][a-z]+$"},
        "age": {"type": "integer"},
    },
    "required": ["name", "age"],
    "additionalProperties": False,
}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"type": "nonsense"}', "not a valid JSON Schema"),
        ('{"$ref": "https://example.com/s.json"}', "is not local"),
        ('{"type": "string", "pattern": "(a)\\\\1"}', "RE2"),
        ('{"patternProperties": {"(?=x)": {}}}', "RE2"),
        (
            '{"patternProperties": {"a": {}}, "unevaluatedProperties": false}',
            "unevaluatedProperties",
        ),
        (
            "{" + '"items": {' * (MAX_DEPTH + 1) + "}" * (MAX_DEPTH + 2),
            "nested deeper",
        ),
    ],
)
def test_parse_schema_refuses_what_is_unsafe_or_invalid(text, reason):
    """Non-JSON, non-objects, invalid schemas, remote refs, non-RE2 regexes, deep nesting fail."""
    with pytest.raises(ValueError, match=reason):
        parse_schema(text)


def test_validates_checks_types_required_patterns_and_extras():
    """Valid JSON passes; wrong types, missing keys, pattern misses, extra keys, non-JSON fail."""
    schema = parse_schema(json.dumps(PERSON))
    assert validates(schema, '{"name": "Ada", "age": 36}')
    for bad in [
        '{"name": "Ada", "age": "36"}',
        '{"name": "Ada"}',
        '{"name": "ada", "age": 1}',
        '{"name": "Ada", "age": 1, "x": 0}',
        '{"name": "Ada", "age": 1',
    ]:
        assert not validates(schema, bad), bad


def test_a_pattern_that_backtracks_in_re_stays_linear():
    """(a|a)*b against a long run of a's — exponential in `re` — validates at once with RE2."""
    schema = parse_schema('{"type": "string", "pattern": "^(a|a)*b$"}')
    started = time.perf_counter()
    assert not validates(schema, json.dumps("a" * 5000))
    assert time.perf_counter() - started < 5  # `re` would not finish in minutes
