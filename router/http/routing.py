"""The routing fields of an HTTP request: headers or extra body fields, checked and applied.

Headers `x-tokenrouter-privacy`, `-profile`, `-latency-slo-ms`, `-max-cost-usd`, `-tenant` and
`x-request-id`, or the body fields `privacy`, `profile`, `latency_slo_ms`, `max_cost_usd`,
`tenant` (what the OpenAI SDK's `extra_body` sends; they are removed from the body before the
face parses it). When both are given, the body's value wins, except privacy, which takes the
stricter of the two: a default header set for an application cannot be lowered by one call.
Privacy is a class name (public, internal, confidential, restricted) or its number (1-4).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from router.api import router_pb2 as pb
from router.core.errors import InvalidArgument

PRIVACY = {"public": pb.PUBLIC, "internal": pb.INTERNAL, "confidential": pb.CONFIDENTIAL}
PRIVACY["restricted"] = pb.RESTRICTED
HEADER = "x-tokenrouter-"
FIELDS = ("privacy", "profile", "latency_slo_ms", "max_cost_usd", "tenant")
MAX_LATENCY_SLO_MS = 3_600_000


def _header_name(field: str) -> str:
    return HEADER + field.replace("_", "-")


def _privacy(field: str, value: Any) -> int:
    if isinstance(value, str):
        text = value.strip().lower()
        if text in PRIVACY:
            return PRIVACY[text]
        value = int(text) if text.isdigit() and len(text) < 3 else text
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 4:
        return value
    raise InvalidArgument(field, "must be one of public, internal, confidential, restricted")


def _number(field: str, value: Any, integer: bool) -> float:
    if isinstance(value, str):
        try:
            value = int(value) if integer else float(value)
        except ValueError:
            raise InvalidArgument(
                field, f"must be a{'n integer' if integer else ' number'}"
            ) from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgument(field, f"must be a{'n integer' if integer else ' number'}")
    if integer and not isinstance(value, int):
        raise InvalidArgument(field, "must be an integer")
    if not math.isfinite(value) or value < 0:
        raise InvalidArgument(field, "must be a finite number >= 0")
    if integer and value > MAX_LATENCY_SLO_MS:
        raise InvalidArgument(field, f"at most {MAX_LATENCY_SLO_MS}")
    return value


def _text(field: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidArgument(field, "must be a string")
    return value  # its length and characters are checked with the request (router/api/convert.py)


def apply(msg: pb.GenerateRequest, headers: Mapping[str, str], body: dict[str, Any]) -> None:
    """Sets the routing fields of `msg` from the headers and pops them from `body`."""
    for field in FIELDS:
        name = _header_name(field)
        sources = [(name, headers[name])] if name in headers else []
        if field in body:
            sources.append((field, body.pop(field)))
        for where, value in sources:  # the body's, when present, comes last and wins
            if field == "privacy":
                msg.privacy = max(msg.privacy, _privacy(where, value))
            elif field == "latency_slo_ms":
                msg.latency_slo_ms = int(_number(where, value, integer=True))
            elif field == "max_cost_usd":
                msg.max_cost_usd = _number(where, value, integer=False)
            elif field == "profile":
                msg.profile = _text(where, value)
            else:
                msg.tenant = _text(where, value)
    if "x-request-id" in headers:
        msg.request_id = headers["x-request-id"]
