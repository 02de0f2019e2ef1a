"""One config version: its policies, pipeline, batcher and backends.

A request runs start to finish on the Runtime that was current when it arrived, so a reload
never mixes two configs within one request. Backends, their statistics and health are shared
with the next version where the backend's config did not change. `active` counts the requests
running on a version (from their context to their end, fallbacks included): a backend a reload
retires may still be chosen by any of them, so it is closed only when no version that has it
is active and nothing is admitted to it.
"""

from __future__ import annotations

import asyncio
import time

from router.config import LoadedConfig
from router.core import estimates
from router.core.backend import Backend
from router.core.errors import InvalidArgument
from router.core.framework import BackendView, RequestContext
from router.core.types import Decision, Request
from router.placement.batcher import Batcher
from router.placement.pipeline import PolicyPipeline
from router.runtime import admission
from router.runtime.admission import Admission
from router.runtime.backend_stats import BackendStats
from router.runtime.resilience import HealthTracker
from router.state.fleet import FleetSlots

# Prompts longer than this are tokenized and scanned in a worker thread, not on the event loop.
INLINE_CHARS = 4096


def _chars(request: Request) -> int:
    return request.chars()


class _InUse:
    """Runtime.in_use(): a plain class, since a generator-based context manager costs several
    times as much on every request."""

    __slots__ = ("_runtime",)

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    def __enter__(self) -> Runtime:
        self._runtime.active += 1
        return self._runtime

    def __exit__(self, *exc: object) -> None:
        self._runtime.active -= 1


class Runtime:
    """Everything one config version decides with."""

    def __init__(
        self,
        loaded: LoadedConfig,
        pipeline: PolicyPipeline,
        backends: dict[str, Backend],
        stats: dict[str, BackendStats],
        health: HealthTracker,
        slots: FleetSlots | None = None,
    ) -> None:
        self.loaded = loaded
        self.config = loaded.config
        self.pipeline = pipeline
        self.backends = backends
        self.stats = stats
        self.health = health
        self.slots = slots  # fleet-wide in-flight slots (shared state), or None
        if slots is not None:
            slots.track(backends)
        self.loaded_at = time.time()
        self.active = 0  # requests running on this version (see the module docstring)
        # What every request's context reads of the backends' configs, once per version.
        self._models = frozenset(
            m for b in backends.values() for m in (b.config.model, *b.config.aliases)
        )
        self._windows = tuple((n, b.config.context_window) for n, b in backends.items())
        self._largest_window = max((w for _, w in self._windows), default=0)
        self._snapshots: dict[str, tuple[tuple[object, ...], BackendView]] = {}  # see view()
        sched = self.config.scheduler
        self.batcher = Batcher(
            pipeline,
            self.views,
            self.admit,
            max_batch=sched.max_batch,
            window_ms=sched.batch_window_ms,
            time_limit_ms=sched.solver_time_limit_ms,
        )

    def in_use(self) -> _InUse:
        """Counts a request in `active` while it may still place on this version:
        `with runtime.in_use() as rt: ...`."""
        return _InUse(self)

    def views(self) -> list[BackendView]:
        """Current snapshots of every backend, in config order."""
        return [self.view(name) for name in self.backends]

    def view(self, name: str) -> BackendView:
        """The current snapshot of one backend. A snapshot is immutable, so while its figures
        stay the same (between requests that change nothing, most of the time) the last one is
        handed out again instead of building an equal one."""
        backend, stats = self.backends[name], self.stats[name]
        load = backend.load()
        in_flight = backend.admitted
        if self.slots is not None and (fleet := self.slots.in_flight(name)) is not None:
            in_flight = max(in_flight, fleet)
        figures = (
            in_flight,
            load.queued,
            load.capacity,
            load.limit,
            stats.ttft_ms,
            stats.tokens_per_s,
            stats.prefill_tokens_per_s,
            stats.request_ms,
            self.health.reason(name),
        )
        last = self._snapshots.get(name)
        if last is not None and last[0] == figures:
            return last[1]
        in_flight, queued, capacity, limit, ttft, tps, prefill, request_ms, reason = figures
        view = BackendView(
            name=name,
            config=backend.config,
            in_flight=in_flight,
            queued=queued,
            capacity=capacity,
            limit=limit,
            observed_ttft_ms=ttft,
            observed_tokens_per_s=tps,
            observed_prefill_tokens_per_s=prefill,
            observed_request_ms=request_ms,
            health_reason=reason,
        )
        self._snapshots[name] = (figures, view)
        return view

    async def context(self, request: Request, offload: bool = False) -> RequestContext:
        """Computes the per-request state every policy reads, and checks request-wide limits.

        Tokenizing and content scans run in a worker thread for a long prompt, or whenever
        `offload` is set (a large RouteBatch, whose short prompts add up)."""
        inline = not offload and _chars(request) <= INLINE_CHARS
        profile = self.pipeline.profile_for(request.profile)  # the only lookup of this request
        if request.model and request.model not in self._models:
            known = ", ".join(sorted(self._models))
            raise InvalidArgument("model", f"unknown model {request.model!r} (known: {known})")
        if inline:
            exact, typical, bound = self._count_prompt_tokens(request)
        else:
            exact, typical, bound = await asyncio.to_thread(self._count_prompt_tokens, request)
        if exact:
            by_backend = {n: exact.get(n, typical) for n in self.backends}
            bounds = {n: exact.get(n, bound) for n in self.backends}
        else:
            by_backend, bounds = (
                dict.fromkeys(self.backends, typical),
                dict.fromkeys(self.backends, bound),
            )
        largest, max_tokens = self._largest_window, request.max_tokens
        if max_tokens >= largest:
            raise InvalidArgument(
                "max_tokens",
                f"{max_tokens} does not fit any backend (largest context {largest})",
            )
        if not any(by_backend[n] + max_tokens <= window for n, window in self._windows):
            prompt_tokens = min(by_backend.values())
            raise InvalidArgument(
                "messages",
                f"prompt of ~{prompt_tokens} tokens + max_tokens {max_tokens} exceeds "
                f"every backend's context window (largest {largest})",
            )
        ctx = RequestContext(
            request=request,
            prompt_tokens=next(iter(exact.values()), typical),
            privacy=request.privacy,
            backend_prompt_tokens=by_backend,
            backend_prompt_bounds=bounds,
            profile=profile,
        )
        if inline:
            return self.pipeline.prepare(ctx)
        return await asyncio.to_thread(self.pipeline.prepare, ctx)  # content scans of long prompts

    def _count_prompt_tokens(self, request: Request) -> tuple[dict[str, int], int, int]:
        """(exact counts of the backends that can count, typical estimate, upper bound)."""
        exact: dict[str, int] = {}
        for name, backend in self.backends.items():
            if (count := backend.count_prompt_tokens(request)) is not None:
                exact[name] = count
        typical = estimates.prompt_tokens_estimate(request)
        return exact, typical, estimates.prompt_tokens_bound(request)

    def admit(self, ctx: RequestContext, decision: Decision) -> Admission:
        """Reserves budget and rate for a generation placed on `decision.backend`."""
        name = decision.backend
        profile = self.pipeline.profile_of(ctx)
        admitted = admission.admit(profile, ctx, self.view(name), self.backends[name])
        if self.slots is not None:
            try:
                slot = self.slots.reserve(name)
            except BaseException:
                admitted.release()
                raise
            if slot is not None:
                admitted.hold(slot)
        return admitted
