"""Bounded label values: every label of a tokenrouter metric comes from the config or a fixed set.

A client's text (tenant, request id, model, an unknown profile) never becomes a label value, so
a hostile client cannot grow the exposition. Backends and profiles are the names configured in
any version the router has run (a request may end on the version it began on after a reload):
at most the configs loaded, never the requests seen. Anything else maps to `OTHER`; a request
that ended before any backend was chosen has backend `NONE`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from router.core.errors import Code
from router.core.framework import RequestContext
from router.core.types import Request
from router.placement.solver import CP_SAT, GREEDY, MIN_COST_FLOW, SINGLE

if TYPE_CHECKING:
    from router.runtime.context import Runtime

OTHER = "other"
NONE = "none"
KINDS = frozenset({"route", "generate"})
STATUSES = frozenset({"OK", "CANCELLED", *(c.value for c in Code)})
SOLVERS = frozenset({SINGLE, MIN_COST_FLOW, CP_SAT, GREEDY})


class LabelDomain:
    """The label values a router may use, learned from each config version it builds."""

    def __init__(self) -> None:
        self.tiers: dict[str, str] = {}  # backend name -> its tier
        self.profiles: set[str] = set()
        self.default_profile = ""

    def learn(self, runtime: Runtime) -> None:
        """Adds the backends and profiles of `runtime`'s config (called once per version)."""
        for name, backend in runtime.backends.items():
            self.tiers[name] = str(backend.config.tier)
        self.profiles.update(runtime.pipeline.profiles)
        self.default_profile = runtime.pipeline.default_profile

    def backend(self, name: str) -> str:
        """A configured backend name, `NONE` for no backend, else `OTHER`."""
        if not name:
            return NONE
        return name if name in self.tiers else OTHER

    def tier(self, backend: str) -> str:
        """The tier of a (bounded) backend label; `NONE` for none or other."""
        return self.tiers.get(backend, NONE)

    def profile(self, request: Request, ctx: RequestContext | None) -> str:
        """The profile the request ran under: the resolved one, else the requested (or
        default) name if it is configured, else `OTHER`."""
        if ctx is not None and ctx.profile is not None:
            name = ctx.profile.name
        else:
            name = request.profile or self.default_profile
        return name if name in self.profiles else OTHER


def status(value: str) -> str:
    """A fixed status code; anything else (an unexpected `code` attribute) is INTERNAL."""
    return value if value in STATUSES else "INTERNAL"


def kind(value: str) -> str:
    return value if value in KINDS else OTHER


def solver(value: str) -> str:
    return value if value in SOLVERS else OTHER
