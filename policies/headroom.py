"""headroom: keep part of the trusted backends' slots for requests that have nowhere else to go.

A request that may use a third-party backend (its effective class is not in `protected`) is
kept off an edge or self-hosted backend whose free slots have fallen to `fraction` of its slots
or fewer, so that CONFIDENTIAL and RESTRICTED requests, which only trusted backends may serve,
still find room. A soft filter: when no other backend is left for the request, it is not
applied.

    excluded when class not in protected and trust(b) != third_party
                  and free_slots(b) <= fraction x slots(b)
Parameters:
    fraction (0.25): the share of each limited trusted backend's slots kept.
    protected ([CONFIDENTIAL, RESTRICTED]): the classes the room is kept for.
Backends without a slot limit are never filtered.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field, field_validator

from policies.params import Params, parse
from router.framework import BackendView, RequestContext
from router.types import Privacy


class HeadroomParams(Params):
    fraction: float = Field(0.25, gt=0, lt=1)
    protected: list[str] = Field(default_factory=lambda: ["CONFIDENTIAL", "RESTRICTED"])

    @field_validator("protected")
    @classmethod
    def _classes(cls, value: list[str]) -> list[str]:
        names = [v.upper() for v in value]
        unknown = [v for v in names if v not in Privacy.__members__ or v == "UNSPECIFIED"]
        if unknown:
            raise ValueError(f"unknown privacy class {unknown[0]!r}")
        return names


class Headroom:
    soft = True

    def __init__(self, name: str, params: HeadroomParams) -> None:
        self.name = name
        self.fraction = params.fraction
        self.protected = frozenset(Privacy[c] for c in params.protected)

    def filter(self, ctx: RequestContext, backend: BackendView) -> str | None:
        if ctx.privacy in self.protected or backend.config.effective_trust == "third_party":
            return None
        if not backend.limit:
            return None
        free = backend.limit - backend.in_flight
        if free <= self.fraction * backend.limit:
            return (
                f"{free} of {backend.limit} slots left, kept for "
                f"{'/'.join(sorted(p.name for p in self.protected))} requests"
            )
        return None


def create(name: str, parameters: Mapping[str, Any]) -> Headroom:
    return Headroom(name, parse(HeadroomParams, parameters))
