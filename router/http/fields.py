"""Typed reads of decoded JSON for the faces: each names the field when the type is wrong.

`json_text` turns an object (a tool's schema, a call's input) back into compact JSON text for the
gRPC message; its size then counts toward `limits.max_prompt_chars` in router/api/convert.py.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from router.core.errors import InvalidArgument


def obj(field: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidArgument(field, "must be an object")
    return value


def array(field: str, value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidArgument(field, "must be an array")
    return value


def text(field: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidArgument(field, "must be a string")
    return value


def boolean(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidArgument(field, "must be true or false")
    return value


def integer(field: str, value: Any, low: int = -(2**63), high: int = 2**63 - 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(field, "must be an integer")
    if not low <= value <= high:
        raise InvalidArgument(field, f"must be between {low} and {high}")
    return value


def number(field: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgument(field, "must be a number")
    if not math.isfinite(value):
        raise InvalidArgument(field, "must be finite")
    return float(value)


def json_text(field: str, value: Any) -> str:
    """An object as JSON text (a string is taken as JSON text already)."""
    if isinstance(value, str):
        return value
    if not isinstance(value, dict):
        raise InvalidArgument(field, "must be an object")
    try:
        return orjson.dumps(value).decode()
    except TypeError as exc:  # nested too deep for orjson
        raise InvalidArgument(field, f"cannot be encoded: {exc}") from None
