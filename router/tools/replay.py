"""What-if replay: the real policy pipeline and solver over a recorded trace, in simulated time.

`tokenrouter replay --trace FILE --config A.yaml [--compare B.yaml]` reports, per config, the total
cost, cost per 1k served requests, TTFT p50/p95/p99, SLO attainment, the share of requests per
backend, privacy violations and rejections by error code; with --compare also B - A.

Simulation model (discrete events, never sleeps; the same inputs and seed give the same output):

- Arrivals: the trace, rebased to t = 0 (--speedup compresses it). Arrivals within the batch
  window of a batch's first one (the config's `batch_window_ms` or --batch-window-ms; 0: equal
  timestamps), at most `max_batch`, are placed together at first + window, as the live
  micro-batcher does: placement.plan -> solver.solve -> placement.decide, with the config's
  policies from the registry, which hands factories a PluginHandle on the simulated clock: its
  budget store and token window run on simulated time (budget windows start at t = 0).
- Requests: prompt tokens from the trace; max_tokens as recorded (Azure: the generated tokens;
  --max-tokens N: N, output capped at N); privacy and SLO as recorded or drawn by ratio with the
  seeded RNG; no content. The live router's pre-placement checks (limits.max_tokens, known model,
  largest context window) reject with INVALID_ARGUMENT.
- Views: in_flight = admitted and not finished, queued = waiting for a slot, capacity = slots
  running at once, limit = running + waiting accepted (llamacpp: replicas, replicas + max_queue;
  scripted/openai/anthropic: max_concurrency for both, 0 = unlimited). Observed rates are 0, so
  estimates use the configured ones, unless --ewma feeds completions to BackendStats.
- Admission: a backend already holding `limit` requests refuses, as live backends do, and the
  request is placed again without it (ctx.excluded), up to `fallback.max_attempts` backends, then
  is rejected (RESOURCE_EXHAUSTED). Otherwise it is admitted by router.runtime.admission, as
  live requests are: each Reserver of the profile reserves (a RouterError releases what was
  held and rejects with its code). A request starts when a slot is free (FIFO).
- Times: TTFT = queue wait (batch window included) + prompt / prefill rate + rtt; completion =
  first token + output / decode rate (the backend's `performance`); with --service-model DIR,
  the trained predictors' TTFT and time per token for the job where they judge it
  (router/tools/replay_service.py). A request-log trace's recorded times are compared with the
  simulated ones (calibration). TTFT is known at the start,
  so the event heap holds completions; arrivals are a sorted stream merged with it (completions
  at the same instant go first). A completion settles the admission with
  Usage(cost_usd=estimates.cost_usd(real output)), frees the slot and starts the next in queue.
- Privacy violation: a RESTRICTED request on a third_party backend, or a placement a configured
  privacy policy (the default one if none) would exclude, whether or not the profile uses it.
- SLO attainment: over every request with an SLO; a rejected one misses it.

CP-SAT is deterministic (one worker) unless its time limit (the config's, or
--solver-time-limit-ms) cuts a solve short.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import json
import math
import sys
import time
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from router.config import BackendCommon, LoadedConfig, load_config
from router.core import estimates
from router.core.errors import ConfigError, ResourceExhausted, RouterError
from router.core.framework import BackendView, Filter, RequestContext
from router.core.guard import third_party_forbidden
from router.core.handle import PluginHandle
from router.core.registry import Registry, default_registry
from router.core.types import Decision, Privacy, Usage
from router.placement import placement, solver
from router.placement.pipeline import PolicyPipeline
from router.predict.model import PredictorError, Predictors, load_for
from router.runtime import admission
from router.runtime.admission import Admission
from router.runtime.backend_stats import BackendStats
from router.tools import replay_trace
from router.tools.replay_report import Metrics, difference, format_report
from router.tools.replay_service import ServiceModel, calibration
from router.tools.replay_trace import TraceError, TraceRequest, assign, to_request


class _Backend:
    """A simulated backend: slots, a FIFO queue and the configured speeds."""

    def __init__(self, name: str, config: BackendCommon) -> None:
        self.name, self.config = name, config
        self.slots, self.limit = config.simulated_capacity
        perf = config.performance
        self.prefill, self.decode = perf.prefill_tokens_per_s, perf.decode_tokens_per_s
        self.rtt_s = perf.rtt_ms / 1e3
        self.running = 0
        self.admitted = 0  # running + queued, counted by router.runtime.admission (as live)
        self.queue: deque[_Job] = deque()
        self.stats = BackendStats()


@dataclass(slots=True)
class _Job:
    index: int
    ctx: RequestContext
    backend: _Backend
    admission: Admission
    arrival: float
    output: int
    first_token: float = 0.0
    ttft_ms: float = 0.0


class _Simulation:
    def __init__(
        self,
        loaded: LoadedConfig,
        *,
        ewma: bool,
        time_limit_s: float,
        registry: Registry | None = None,
        service: ServiceModel | None = None,
    ) -> None:
        self.now = 0.0
        self.config = loaded.config
        clock = self._clock
        handle = PluginHandle.simulated(clock)  # budget, capacity and the clock on simulated time
        # Decisions use the config's predictors, as live; `service` times the jobs.
        predictors = load_for(loaded)
        self.pipeline = PolicyPipeline(loaded, registry or default_registry(), handle, predictors)
        self.service = service
        self.backends = [_Backend(n, c) for n, c in self.config.backends.items()]
        self.by_name = {b.name: b for b in self.backends}
        self.ewma, self.time_limit_s = ewma, time_limit_s
        self.events: list[tuple[float, int, _Job]] = []  # completions
        self.seq = itertools.count()
        # Privacy violations are counted against the guards' filters (the default guard's if
        # the config has none) and the always-on rule.
        refs = [s.policy for s in self.pipeline.guards if isinstance(s.policy, Filter)]
        self.privacy_refs = refs or [(registry or default_registry()).default_guard(handle)]
        self.ttft: dict[int, float] = {}
        self.total: dict[int, float] = {}
        self.placed: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self.tiers: Counter[str] = Counter()
        self.cost = 0.0
        self.violations = self.batches = 0

    def _clock(self) -> float:
        return self.now

    def run(self, requests: Sequence[TraceRequest], window_s: float) -> None:
        i, n, max_batch = 0, len(requests), self.config.scheduler.max_batch
        while i < n:
            at = requests[i].ts + window_s
            j = i + 1
            while j < n and j - i < max_batch and requests[j].ts <= at:
                j += 1
            self._advance(at)
            self.now = at
            self._place(requests, range(i, j))
            i = j
        self._advance(math.inf)

    def _advance(self, until: float) -> None:
        while self.events and self.events[0][0] <= until:
            when, _, job = heapq.heappop(self.events)
            self.now = when
            self._complete(job)

    def _context(self, k: int, r: TraceRequest) -> RequestContext:
        request = to_request(k, r, self.config)
        profile = self.pipeline.profile_for(request.profile)
        ctx = RequestContext(request, r.prompt_tokens, request.privacy, profile=profile)
        return self.pipeline.prepare(ctx)

    def _views(self) -> list[BackendView]:
        out = []
        for b in self.backends:
            s = b.stats if self.ewma else _NO_STATS
            observed = (s.ttft_ms, s.tokens_per_s, s.prefill_tokens_per_s, s.request_ms)
            out.append(
                BackendView(b.name, b.config, b.admitted, len(b.queue), b.slots, b.limit, *observed)
            )
        return out

    def _place(self, requests: Sequence[TraceRequest], indices: range) -> None:
        batch: list[tuple[TraceRequest, RequestContext]] = []
        for k in indices:
            try:
                batch.append((requests[k], self._context(k, requests[k])))
            except RouterError as exc:
                self.rejected[exc.code] += 1
        self._solve(batch, 1)

    def _solve(self, batch: Sequence[tuple[TraceRequest, RequestContext]], attempt: int) -> None:
        if not batch:
            return
        views = self._views()
        p = placement.plan(self.pipeline, [ctx for _, ctx in batch], views)
        solution = solver.solve(p.problem, time_limit_s=self.time_limit_s)
        self.batches += 1
        self.tiers[solution.tier] += 1
        results = placement.decide(self.pipeline, p, solution, self.batches)
        by_name = {v.name: v for v in views}
        for (r, ctx), result in zip(batch, results, strict=True):
            if isinstance(result, Decision):
                self._admit(r, ctx, by_name[result.backend], attempt)
            else:  # after a fallback the live router reports the backend's refusal
                self.rejected[result.code if attempt == 1 else ResourceExhausted.code] += 1

    def _admit(self, r: TraceRequest, ctx: RequestContext, view: BackendView, attempt: int) -> None:
        b = self.by_name[view.name]
        if b.limit and b.admitted >= b.limit:  # the backend refuses: fall back
            if attempt < self.config.fallback.max_attempts:
                excluded = {**ctx.excluded, b.name: f"{b.limit} requests already admitted"}
                self._solve([(r, replace(ctx, excluded=excluded))], attempt + 1)
            else:
                self.rejected[ResourceExhausted.code] += 1
            return
        profile = self.pipeline.profile_of(ctx)
        try:  # the live router's admission: a refusal releases what was held
            admitted = admission.admit(profile, ctx, view, b)
        except RouterError as exc:
            self.rejected[exc.code] += 1
            return
        if third_party_forbidden(ctx.privacy, view) or any(
            ref.filter(ctx, view) for ref in self.privacy_refs
        ):
            self.violations += 1
        self.placed[b.name] += 1
        output = min(r.completion_tokens, ctx.request.max_tokens)
        job = _Job(int(ctx.request.request_id), ctx, b, admitted, r.ts, output)
        if not b.slots or b.running < b.slots:
            self._start(job)
        else:
            b.queue.append(job)

    def _start(self, job: _Job) -> None:
        b = job.backend
        b.running += 1
        timed = None
        if self.service is not None:
            timed = self.service.times(
                job.ctx, b.name, b.config, b.running - 1, len(b.queue), job.output
            )
        if timed is None:
            job.first_token = self.now + job.ctx.prompt_tokens / b.prefill + b.rtt_s
            done = job.first_token + job.output / b.decode
        else:
            job.first_token = self.now + timed[0]
            done = job.first_token + timed[1]
        job.ttft_ms = (job.first_token - job.arrival) * 1e3
        heapq.heappush(self.events, (done, next(self.seq), job))

    def _complete(self, job: _Job) -> None:
        b, ctx = job.backend, job.ctx
        b.running -= 1
        cost = estimates.cost_usd(b.config.price, ctx.prompt_tokens, job.output)
        total_ms = (self.now - job.arrival) * 1e3
        usage = Usage(ctx.prompt_tokens, job.output, cost, b.name, "stop", job.ttft_ms, total_ms)
        job.admission.settle(usage)
        if self.ewma:
            decode_s = self.now - job.first_token
            b.stats.observe(ctx.prompt_tokens, job.ttft_ms, job.output, decode_s, total_ms)
        self.cost += cost
        self.ttft[job.index] = job.ttft_ms
        self.total[job.index] = total_ms
        if b.queue:
            self._start(b.queue.popleft())


_NO_STATS = BackendStats()


def replay(
    loaded: LoadedConfig,
    requests: Sequence[TraceRequest],
    seed: int = 0,
    *,
    privacy: Mapping[Privacy, float] | None = None,
    slo: Sequence[tuple[int, float]] | None = None,
    batch_window_ms: float | None = None,
    solver_time_limit_ms: float | None = None,
    ewma: bool = False,
    registry: Registry | None = None,
    service: ServiceModel | None = None,
) -> Metrics:
    """Replays shaped requests (see replay_trace.shape) against one config; see the docstring.
    `service`: trained predictors time the jobs instead of the configured rates."""
    started = time.perf_counter()
    requests = assign(requests, seed=seed, privacy=dict(privacy or {}), slo=slo)
    sched = loaded.config.scheduler
    window_ms = sched.batch_window_ms if batch_window_ms is None else batch_window_ms
    limit_ms = solver_time_limit_ms or sched.solver_time_limit_ms
    sim = _Simulation(
        loaded, ewma=ewma, time_limit_s=limit_ms / 1e3, registry=registry, service=service
    )
    sim.run(requests, window_ms / 1e3)
    ttfts = sorted(sim.ttft.values())
    served = len(ttfts)
    slo_met = slo_requests = 0
    for k, r in enumerate(requests):
        if r.latency_slo_ms:
            slo_requests += 1
            slo_met += k in sim.ttft and sim.ttft[k] <= r.latency_slo_ms
    names = [b.name for b in sim.backends]
    ttft_error, total_error, calibrated = calibration(requests, sim.ttft, sim.total)
    return Metrics(
        config=loaded.source,
        requests=len(requests),
        served=served,
        total_cost_usd=sim.cost,
        cost_per_1k_requests_usd=sim.cost / served * 1000 if served else 0.0,
        ttft_p50_ms=_percentile(ttfts, 0.50),
        ttft_p95_ms=_percentile(ttfts, 0.95),
        ttft_p99_ms=_percentile(ttfts, 0.99),
        slo_requests=slo_requests,
        slo_met=slo_met,
        slo_attainment=slo_met / slo_requests if slo_requests else None,
        backend_requests={n: sim.placed[n] for n in names},
        backend_share={n: sim.placed[n] / served if served else 0.0 for n in names},
        privacy_violations=sim.violations,
        rejected=sum(sim.rejected.values()),
        rejected_by_code=dict(sorted(sim.rejected.items())),
        batches=sim.batches,
        solver_tiers=dict(sorted(sim.tiers.items())),
        simulated_s=sim.now,
        wall_s=time.perf_counter() - started,
        service_model=str(service.predictors.directory) if service else "analytic",
        service_fallbacks=service.fallbacks if service else 0,
        calibrated_requests=calibrated,
        ttft_error_pct=ttft_error,
        total_error_pct=total_error,
    )


def _percentile(ordered: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); 0 for no values."""
    if not ordered:
        return 0.0
    pos = (len(ordered) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tokenrouter replay", description="Replay a trace against configs in simulated time."
    )
    replay_trace.add_trace_arguments(p)
    p.add_argument("--config", help="config A (default: the embedded config)")
    p.add_argument("--compare", help="config B: also report B and B - A")
    p.add_argument("--batch-window-ms", type=float, help="default: the config's")
    p.add_argument("--solver-time-limit-ms", type=float, help="default: the config's")
    p.add_argument("--ewma", action="store_true", help="feed simulated completions to estimates")
    p.add_argument(
        "--service-model",
        metavar="DIR",
        help="time jobs with the predictors in DIR (tokenrouter train) instead of the rates",
    )
    p.add_argument(
        "--json", dest="json_path", metavar="FILE", help="also write the metrics as JSON to FILE"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """`tokenrouter replay`: prints the report; 0 on success, 2 on a bad trace, config or option."""
    args = _parser().parse_args(argv)
    try:
        requests, privacy, slo = replay_trace.trace_from_arguments(args)
        options = dict(
            privacy=privacy,
            slo=slo,
            batch_window_ms=args.batch_window_ms,
            solver_time_limit_ms=args.solver_time_limit_ms,
            ewma=args.ewma,
        )
        model = Predictors.load(args.service_model) if args.service_model else None
        configs = [load_config(args.config)]
        if args.compare:
            configs.append(load_config(args.compare))
        results = [
            replay(c, requests, args.seed, service=model and ServiceModel(model), **options)  # type: ignore[arg-type]
            for c in configs
        ]
    except (ConfigError, TraceError, PredictorError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"trace: {', '.join(args.trace)}  requests: {len(requests)}  seed: {args.seed}")
    print(format_report(results))
    if args.json_path:
        out: dict[str, Any] = {"A": asdict(results[0])}
        if len(results) == 2:
            out["B"], out["difference"] = asdict(results[1]), difference(*results)
        with open(args.json_path, "w") as f:
            json.dump(out, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
