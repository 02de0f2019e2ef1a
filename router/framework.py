"""Policy contracts: a policy filters backends, scores them, or both.

Policies are pure: they read a `RequestContext` (computed once per request) and `BackendView`
snapshots (refreshed in the background), and never do I/O on the request path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from router.config import BackendCommon
from router.types import Privacy, Request, Tier


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What every policy needs about one request, computed once."""

    request: Request
    prompt_tokens: int
    privacy: Privacy  # effective class: the request's, or the one detected from content


@dataclass(frozen=True, slots=True)
class BackendView:
    """An immutable snapshot of one backend for the scheduler."""

    name: str
    config: BackendCommon
    in_flight: int = 0
    queued: int = 0
    capacity: int = 0
    observed_ttft_ms: float = 0.0
    observed_tokens_per_s: float = 0.0

    @property
    def tier(self) -> Tier:
        return self.config.tier

    @property
    def models(self) -> tuple[str, ...]:
        return (self.config.model, *self.config.aliases)


@runtime_checkable
class Filter(Protocol):
    """Drops backends that must never serve a request."""

    name: str

    def filter(self, ctx: RequestContext, backend: BackendView) -> str | None:
        """Returns why `backend` is excluded, or None to keep it."""


@runtime_checkable
class Scorer(Protocol):
    """Rates backends that passed every filter."""

    name: str

    def score(self, ctx: RequestContext, backend: BackendView) -> float:
        """Returns a score in [0, 1]; 1 is best."""
