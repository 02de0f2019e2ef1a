"""headroom: keep part of the trusted backends' slots for requests that have nowhere else to go.

A request that may use a third-party backend (its effective class is not in `protected`) is
kept off an edge or self-hosted backend whose free slots have fallen to `fraction` of its slots
or fewer, so that CONFIDENTIAL and RESTRICTED requests, which only trusted backends may serve,
still find room. A soft filter: when no other backend is left for the request, it is not
applied.

    excluded when class not in protected and trust(b) != third_party
                  and free_slots(b) <= fraction x slots(b)

Within a batch the same rule holds as a constraint the solver sees (the filter alone reads the
pre-batch snapshot, so a burst could fill every slot): for each such limited trusted backend b,

    unprotected requests of the batch placed on b <= allowed(b)
    allowed(b) = max(0, free_slots(b) - floor(fraction x slots(b)))

which is how many of them would pass the filter arriving one by one. The SideLimit is soft: it
does not bind a request whose feasible backends are all limited ones
(router/placement/placement.py), as the filter is not applied to a request with nowhere else to go.
Parameters:
    fraction (0.25): the share of each limited trusted backend's slots kept.
    protected ([CONFIDENTIAL, RESTRICTED]): the classes the room is kept for.
Backends without a slot limit are never filtered.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import Field, field_validator

from policies.params import Params, parse
from router.core.framework import BackendView, Constraint, RequestContext, SideLimit
from router.core.types import Privacy


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
        """Why an unprotected request may not take one of the last slots of `backend`, or None."""
        if ctx.privacy in self.protected or not self._keeps_room(backend):
            return None
        free = backend.limit - backend.in_flight
        if free <= self.fraction * backend.limit:
            return f"{free} of {backend.limit} slots left, kept for {self._for} requests"
        return None

    def constraints(
        self, batch: Sequence[RequestContext], backends: Sequence[BackendView]
    ) -> list[Constraint]:
        """A soft SideLimit per limited trusted backend on which the batch's unprotected
        requests could take more than `allowed` slots."""
        flexible = [i for i, ctx in enumerate(batch) if ctx.privacy not in self.protected]
        out: list[Constraint] = []
        for b in backends:
            if not flexible or not self._keeps_room(b):
                continue
            allowed = self.allowed(b)
            if allowed < len(flexible):  # otherwise it cannot bind
                name = (
                    f"headroom on {b.name}: {allowed} of its {b.limit - b.in_flight} free slots "
                    f"for other requests, the rest kept for {self._for} requests"
                )
                weights = {(i, b.name): 1.0 for i in flexible}
                out.append(SideLimit(name, weights, float(allowed), soft=True))
        return out

    def allowed(self, backend: BackendView) -> int:
        """How many unprotected requests may still take a slot on `backend`: those that would
        pass the filter arriving one by one (free slots left > fraction x slots)."""
        free = backend.limit - backend.in_flight
        return max(0, free - math.floor(self.fraction * backend.limit))

    def _keeps_room(self, backend: BackendView) -> bool:
        return bool(backend.limit) and backend.config.effective_trust != "third_party"

    @property
    def _for(self) -> str:
        return "/".join(sorted(p.name for p in self.protected))


def create(name: str, parameters: Mapping[str, Any]) -> Headroom:
    return Headroom(name, parse(HeadroomParams, parameters))
