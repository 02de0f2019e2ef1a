"""JSON Schemas from clients: checked once at the door, then used to validate outputs.

A schema is client text, so it is held to bounds that keep every later use linear: at most
MAX_DEPTH levels of nesting, `$ref` only within the schema (`#...`; nothing is ever fetched), and
every `pattern` and `patternProperties` key a regex RE2 accepts. Outputs are validated with RE2
in place of Python's backtracking `re` (`pattern`, `patternProperties`, `additionalProperties`),
so no schema can make a validation take exponential time; `unevaluatedProperties`, whose
validator would match `patternProperties` with `re`, is refused beside them.
"""

from __future__ import annotations

import functools
from typing import Any

import orjson
import re2
from jsonschema import Draft202012Validator, ValidationError, validators
from jsonschema.exceptions import SchemaError

MAX_DEPTH = 32  # nesting of objects and arrays in a schema

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False


def parse_schema(text: str) -> dict[str, Any]:
    """The schema `text` holds; raises ValueError saying what is wrong with it."""
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise ValueError("a JSON Schema must be a JSON object")
    _check_bounds(doc)
    cls = validators.validator_for(doc, default=Draft202012Validator)
    try:
        cls.check_schema(doc)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path)
        raise ValueError(
            f"not a valid JSON Schema: {exc.message[:200]}" + (f" (at {where})" if where else "")
        ) from None
    return doc


def validates(schema: dict[str, Any], text: str) -> bool:
    """True if `text` is JSON that satisfies `schema` (one parse_schema returned)."""
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    cls = _linear(validators.validator_for(schema, default=Draft202012Validator))
    try:
        return bool(cls(schema).is_valid(doc))
    except Exception:  # an unresolvable local $ref, a type the validator cannot handle
        return False


def _compile(regex: object, where: str) -> None:
    if not isinstance(regex, str):
        return
    try:
        re2.compile(regex, _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        raise ValueError(
            f"{where} {regex[:40]!r} is not a linear-time (RE2) regex: {reason}"
        ) from None


def _check_bounds(doc: dict[str, Any]) -> None:
    """Depth, local references and RE2 patterns, walked without recursion."""
    stack: list[tuple[Any, int]] = [(doc, 1)]
    keywords: set[str] = set()
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, dict):
            keywords.update(k for k in ("patternProperties", "unevaluatedProperties") if k in node)
            ref = node.get("$ref")
            if isinstance(ref, str) and not ref.startswith("#"):
                raise ValueError(f"$ref {ref[:40]!r} is not local (only '#...' is resolved)")
            _compile(node.get("pattern"), "pattern")
            props = node.get("patternProperties")
            if isinstance(props, dict):
                for key in props:
                    _compile(key, "patternProperties key")
            stack.extend((v, depth + 1) for v in node.values() if isinstance(v, dict | list))
        else:
            stack.extend((v, depth + 1) for v in node if isinstance(v, dict | list))
    if len(keywords) == 2:
        raise ValueError("unevaluatedProperties is not supported beside patternProperties")


def _search(regex: str, text: str) -> bool:
    return re2.compile(regex, _OPTIONS).search(text) is not None


def _pattern(validator: Any, regex: str, instance: Any, schema: Any) -> Any:
    if validator.is_type(instance, "string") and not _search(regex, instance):
        yield ValidationError(f"{instance!r} does not match {regex!r}")


def _pattern_properties(validator: Any, patterns: dict, instance: Any, schema: Any) -> Any:
    if not validator.is_type(instance, "object"):
        return
    for regex, subschema in patterns.items():
        for key, value in instance.items():
            if _search(regex, key):
                yield from validator.descend(value, subschema, path=key, schema_path=regex)


def _additional_properties(validator: Any, extra: Any, instance: Any, schema: Any) -> Any:
    if not validator.is_type(instance, "object"):
        return
    known = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    extras = [k for k in instance if k not in known and not any(_search(p, k) for p in patterns)]
    if validator.is_type(extra, "object"):
        for key in extras:
            yield from validator.descend(instance[key], extra, path=key)
    elif extra is False and extras:
        yield ValidationError(f"additional properties are not allowed ({', '.join(extras)})")


@functools.cache
def _linear(cls: Any) -> Any:
    """`cls` with RE2 in place of `re` for `pattern` and `patternProperties`."""
    return validators.extend(
        cls,
        {
            "pattern": _pattern,
            "patternProperties": _pattern_properties,
            "additionalProperties": _additional_properties,
        },
    )
