"""Policy contracts. A policy implements any of them:

- prepare: refines the per-request context once (e.g. raises the privacy class on detected PII);
- filter: drops backends that must never serve a request, with a reason;
- score: rates each remaining backend in [0, 1] (1 = best);
- constraints: coupling limits across a batch (capacity, budget), returned as data for the solver.

A policy with `binding = True` (a guard, e.g. privacy) binds every request whatever the profile:
the policy pipeline runs its prepare and filter for every request, before the profile's own steps,
whether or not the profile lists it (once, if it does). Its other contracts apply where listed.

Policies are pure: they read a `RequestContext` (computed once per request) and `BackendView`
snapshots (refreshed in the background), and never do I/O on the request path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from router.core.backend_config import BackendCommon
from router.core.types import Privacy, Request, Tier, Usage


@dataclass(frozen=True, slots=True)
class Prediction:
    """What the learned predictors (router/predict/) expect of one request on one backend;
    `fallback` non-empty: they did not decide (why), and the analytic estimate is used."""

    ttft_ms: float = 0.0
    tpot_ms: float = 0.0  # decode time per output token after the first
    output_tokens: int = 0
    fallback: str = ""

    @property
    def total_ms(self) -> float:
        return self.ttft_ms + max(0, self.output_tokens - 1) * self.tpot_ms


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What every policy needs about one request, computed once.

    Prompt sizes per backend: `prompt_tokens_on(b)` is exact where b has a tokenizer, else a
    typical estimate (for scores and latency); `prompt_bound_on(b)` is exact or an upper bound
    (for hard caps: max_cost_usd, budget holds, token windows). `prompt_tokens` is the request's
    overall count (exact from the first backend that can count, else the typical estimate), and
    both fall back to it for a backend not in the maps.
    """

    request: Request
    prompt_tokens: int
    privacy: Privacy  # effective class: the request's, or the one detected from content
    detected: tuple[str, ...] = ()  # names of the sensitive-content detectors that fired
    expected_output_tokens: int = 0  # completion tokens expected (default: max_tokens)
    excluded: Mapping[str, str] = field(default_factory=dict)  # backends that failed it, why
    backend_prompt_tokens: Mapping[str, int] = field(default_factory=dict)  # exact or typical
    backend_prompt_bounds: Mapping[str, int] = field(default_factory=dict)  # exact or upper bound
    # The request's profile (router.placement.pipeline.Profile), resolved once when the context
    # is built; every later step reads it. None in a hand-built context: the pipeline then looks
    # it up.
    profile: Any = field(default=None, compare=False, repr=False)
    # The predictors' view of each backend for this placement (router/predict/model.py); empty
    # when none are configured. Set by PolicyPipeline.predict just before the policies run.
    predictions: Mapping[str, Prediction] = field(default_factory=dict, compare=False, repr=False)

    def prompt_tokens_on(self, backend: str) -> int:
        """Prompt tokens on `backend`: exact when it can count them, else a typical estimate."""
        return self.backend_prompt_tokens.get(backend, self.prompt_tokens)

    def prompt_bound_on(self, backend: str) -> int:
        """Prompt tokens on `backend` at most: exact when it can count them, else an upper bound."""
        return self.backend_prompt_bounds.get(backend, self.prompt_tokens)

    @property
    def output_tokens(self) -> int:
        return self.expected_output_tokens or self.request.max_tokens

    def classified(self, privacy: Privacy, detected: tuple[str, ...]) -> RequestContext:
        """This context with the effective class and the detectors that fired replaced, what a
        privacy preparer decides: dataclasses.replace() does the same at about three times the
        cost."""
        return RequestContext(
            request=self.request,
            prompt_tokens=self.prompt_tokens,
            privacy=privacy,
            detected=detected,
            expected_output_tokens=self.expected_output_tokens,
            excluded=self.excluded,
            backend_prompt_tokens=self.backend_prompt_tokens,
            backend_prompt_bounds=self.backend_prompt_bounds,
            profile=self.profile,
            predictions=self.predictions,
        )

    def predicted(self, predictions: Mapping[str, Prediction]) -> RequestContext:
        """This context with the predictors' view of each backend replaced."""
        return RequestContext(
            request=self.request,
            prompt_tokens=self.prompt_tokens,
            privacy=self.privacy,
            detected=self.detected,
            expected_output_tokens=self.expected_output_tokens,
            excluded=self.excluded,
            backend_prompt_tokens=self.backend_prompt_tokens,
            backend_prompt_bounds=self.backend_prompt_bounds,
            profile=self.profile,
            predictions=predictions,
        )


@dataclass(frozen=True, slots=True)
class BackendView:
    """An immutable snapshot of one backend for the scheduler."""

    name: str
    config: BackendCommon
    in_flight: int = 0  # admitted and not finished, queued ones included
    queued: int = 0  # of those, waiting for a slot at the backend
    capacity: int = 0
    limit: int = 0  # running + queued requests it accepts; 0: no limit
    observed_ttft_ms: float = 0.0
    observed_tokens_per_s: float = 0.0
    observed_prefill_tokens_per_s: float = 0.0
    observed_request_ms: float = 0.0  # moving average of whole-request time
    health_reason: str = ""  # non-empty: unhealthy or ejected, and why

    @property
    def prefill_tokens_per_s(self) -> float:
        """Observed prefill rate, else the configured one."""
        return self.observed_prefill_tokens_per_s or self.config.performance.prefill_tokens_per_s

    @property
    def decode_tokens_per_s(self) -> float:
        """Observed decode rate, else the configured one."""
        return self.observed_tokens_per_s or self.config.performance.decode_tokens_per_s

    @property
    def tier(self) -> Tier:
        return self.config.tier

    @property
    def models(self) -> tuple[str, ...]:
        return (self.config.model, *self.config.aliases)


def binds_every_request(policy: object) -> bool:
    """Whether `policy` is a guard (`binding = True`): its prepare and filter run for every
    request, whatever the profile."""
    return bool(getattr(policy, "binding", False))


@runtime_checkable
class Filter(Protocol):
    """Drops backends that must never serve a request.

    A policy with `soft = True` filters only among the backends every hard filter kept, and only
    when at least one of them passes it (e.g. "drop backends that miss the SLO if another can").
    A policy with `resource = True` excludes for lack of capacity or budget: when it is why nothing
    is feasible, the request gets RESOURCE_EXHAUSTED rather than FAILED_PRECONDITION.
    """

    name: str

    def filter(self, ctx: RequestContext, backend: BackendView) -> str | None:
        """Returns why `backend` is excluded, or None to keep it."""


@runtime_checkable
class Scorer(Protocol):
    """Rates backends that passed every filter."""

    name: str

    def score(self, ctx: RequestContext, backend: BackendView) -> float:
        """Returns a score in [0, 1]; 1 is best."""


class Reservation(Protocol):
    """Something held for a running request: settled with its real usage, or released.

    One held in a shared store may also have `needs_confirm` (True) and `async confirm()`,
    awaited before the first token: it holds in the shared truth too, or raises (RESOURCE_EXHAUSTED
    naming what ran out, UNAVAILABLE when the store is down and fails closed)."""

    def settle(self, usage: Usage) -> None: ...

    def release(self) -> None: ...


@runtime_checkable
class Reserver(Protocol):
    """Holds resources (budget, token rate) at admission, atomically with the placement."""

    name: str

    def reserve(self, ctx: RequestContext, backend: BackendView) -> Reservation | None:
        """Holds what the request may use on `backend`; None when nothing applies."""


@runtime_checkable
class Preparer(Protocol):
    """Refines the per-request context once, before any filter runs."""

    name: str

    def prepare(self, ctx: RequestContext) -> RequestContext:
        """Returns the context to use (the same one, or a copy with fields replaced)."""


@dataclass(frozen=True, slots=True)
class Capacity:
    """At most `slots` requests of the batch may go to `backend`."""

    backend: str
    slots: int


@dataclass(frozen=True, slots=True)
class SideLimit:
    """sum of `weights[(request index, backend)]` over the placements made must be <= `limit`.

    `soft`: like a soft filter, the limit does not bind a request that has nowhere else to go,
    i.e. whose feasible backends are all named by the policy's soft limits (its weights there
    are dropped).
    """

    name: str  # what is limited, e.g. "budget tenant=acme/day"
    weights: Mapping[tuple[int, str], float] = field(default_factory=dict)
    limit: float = 0.0
    soft: bool = False


Constraint = Capacity | SideLimit


@runtime_checkable
class Constrainer(Protocol):
    """Couples the requests of a batch: capacities and shared limits, as data."""

    name: str

    def constraints(
        self, batch: Sequence[RequestContext], backends: Sequence[BackendView]
    ) -> list[Constraint]:
        """Returns the limits that apply to placing `batch` on `backends`."""
