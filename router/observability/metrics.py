"""The router's Prometheus metrics: one `Metrics` per Router, on its own registry.

Every Router owns a `Metrics` with its own `CollectorRegistry` (never the process-global one:
tests and embedders run many routers in one process). `render()` gives the exposition body and
its content type for an HTTP `/metrics`; faces add their own metrics on `registry`.

Two kinds of metrics:
- Moved by requests (this module): requests by kind, backend, tier, profile and status; decision
  time and decisions by solver; time to first token, inter-token time and request duration by
  backend and tier; prompt and completion tokens and cost by backend; fallbacks by the backend
  that failed. The hot path pays one call per request end (`request_ended`), per decision
  (`decided`) and per fallback; label children are resolved once per label set and cached, and
  nothing runs per token.
- Read at scrape time (router/observability/state.py): health, ejections, in-flight and queued
  per backend, budgets per configured tenant, the config version; and the shared state's Redis
  link (router/observability/shared_state.py). They cost nothing between scrapes.

Inter-token time is the request's mean gap between output tokens (time per output token):
(total time - time to first token) / (completion tokens - 1), observed once per request. A
histogram observation per delta cost ~1.6 µs (perf_counter + observe, timeit on the dev box),
about a fifth of the relay's CPU per token, so per-delta gaps are not recorded.

Label values are bounded (router/observability/labels.py): configured names or fixed sets only.
Latency histograms count what they can measure: time to first token whenever a first token went
out, inter-token time when at least two tokens did, duration only for requests that ended OK.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest

from router.core.framework import RequestContext
from router.core.token_window import TokenWindow
from router.core.types import Decision, Request, Usage
from router.observability import labels
from router.observability.labels import LabelDomain
from router.observability.shared_state import SharedStateCollector
from router.observability.state import StateCollector

if TYPE_CHECKING:
    from router.runtime.context import Runtime
    from router.state.shared import SharedState

# Seconds. Decisions take microseconds to a solver time limit; first tokens milliseconds (a warm
# edge model) to tens of seconds (a cold or queued one); output tokens ~1 ms to ~1 s apart.
DECISION_BUCKETS = (1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025,
                    0.05, 0.1, 0.25, 1.0)  # fmt: skip
TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)
INTER_TOKEN_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28,
                       2.5, 5.0)  # fmt: skip
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0,
                    60.0, 120.0, 300.0)  # fmt: skip

BACKEND_TIER = ("backend", "tier")
HTTP_ROUTES = ("chat_completions", "messages", "models", "metrics", "healthz", "readyz", "other")


class _PerBackend:
    """The label children of one backend, resolved once."""

    __slots__ = ("completion", "cost", "inter_token", "prompt", "ttft")

    def __init__(self, m: Metrics, backend: str, tier: str) -> None:
        self.ttft = m.ttft.labels(backend, tier)
        self.inter_token = m.inter_token.labels(backend, tier)
        self.prompt = m.prompt_tokens.labels(backend)
        self.completion = m.completion_tokens.labels(backend)
        self.cost = m.cost.labels(backend)


class Metrics:
    """A router's metrics; see the module docstring.

    `runtime`: returns the router's current config version (None before the first one), read at
    scrape time; `token_window`: the router's tokens-per-minute accounting; `shared`: its state
    in Redis, if any (router/observability/shared_state.py)."""

    def __init__(
        self,
        runtime: Callable[[], Runtime | None] = lambda: None,
        token_window: TokenWindow | None = None,
        shared: Callable[[], SharedState | None] = lambda: None,
    ) -> None:
        self.registry = CollectorRegistry()
        self.domain = LabelDomain()
        r = self.registry
        self.requests = Counter(
            "tokenrouter_requests",
            "Requests ended, by kind (route, generate), backend, tier, profile and status.",
            ("kind", "backend", "tier", "profile", "status"),
            registry=r,
        )
        self.decision = Histogram(
            "tokenrouter_decision_duration_seconds",
            "Time to decide a placement (Decision.decision_us), by solver tier.",
            ("solver",),
            buckets=DECISION_BUCKETS,
            registry=r,
        )
        self.solver_decisions = Counter(
            "tokenrouter_solver_decisions",
            "Placement decisions, by the solver tier that made them.",
            ("solver",),
            registry=r,
        )
        self.ttft = Histogram(
            "tokenrouter_time_to_first_token_seconds",
            "Client-visible time from a Generate's arrival to its first token.",
            BACKEND_TIER,
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        self.inter_token = Histogram(
            "tokenrouter_inter_token_seconds",
            "Mean time between output tokens of a Generate (time per output token).",
            BACKEND_TIER,
            buckets=INTER_TOKEN_BUCKETS,
            registry=r,
        )
        self.duration = Histogram(
            "tokenrouter_request_duration_seconds",
            "Total time of requests that ended OK, by kind, backend and tier.",
            ("kind", *BACKEND_TIER),
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.prompt_tokens = Counter(
            "tokenrouter_prompt_tokens",
            "Prompt tokens charged, by backend.",
            ("backend",),
            registry=r,
        )
        self.completion_tokens = Counter(
            "tokenrouter_completion_tokens",
            "Completion tokens produced, by backend.",
            ("backend",),
            registry=r,
        )
        self.cost = Counter(
            "tokenrouter_cost_usd", "Cost charged in USD, by backend.", ("backend",), registry=r
        )
        self.fallbacks = Counter(
            "tokenrouter_fallbacks",
            "Generates re-placed before their first token, by the backend that failed and why.",
            ("backend", "code"),
            registry=r,
        )
        self.http_requests = Counter(
            "tokenrouter_http_requests",
            "HTTP requests answered by the HTTP faces, by route and status code.",
            ("route", "code"),
            registry=r,
        )
        self._http: dict[tuple[str, int], Counter] = {}
        # Label children, resolved once per label set (all bounded, see labels.py).
        self._backends: dict[tuple[str, str], _PerBackend] = {}
        self._requests: dict[tuple[str, str, str, str, str], Counter] = {}
        self._durations: dict[tuple[str, str, str], Histogram] = {}
        self._solvers: dict[str, tuple[Histogram, Counter]] = {}
        r.register(StateCollector(runtime, token_window))
        r.register(SharedStateCollector(shared))

    def learn(self, runtime: Runtime) -> None:
        """Takes a new config version's backends and profiles as label values."""
        self.domain.learn(runtime)

    def http_answered(self, route: str, status: int) -> None:
        """Counts an HTTP answer; `route` is one of HTTP_ROUTES (else "other"), `status` a
        three-digit code (else "other")."""
        key = (route, status)
        child = self._http.get(key)
        if child is None:
            code = str(status) if 100 <= status <= 599 else "other"
            child = self.http_requests.labels(route if route in HTTP_ROUTES else "other", code)
            if len(self._http) < 1024:
                self._http[key] = child
        child.inc()

    def render(self) -> tuple[bytes, str]:
        """The exposition (Prometheus text format) and its content type, for `/metrics`."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def decided(self, decision: Decision) -> None:
        """Counts one placement decision and its time."""
        children = self._solvers.get(decision.solver)
        if children is None:
            solver = labels.solver(decision.solver)
            children = (self.decision.labels(solver), self.solver_decisions.labels(solver))
            self._solvers[decision.solver] = children
        children[0].observe(decision.decision_us / 1e6)
        children[1].inc()

    def fallback(self, backend: str, code: str) -> None:
        """Counts a Generate that `backend` failed before its first token."""
        self.fallbacks.labels(self.domain.backend(backend), labels.status(code)).inc()

    def request_ended(
        self,
        kind: str,
        request: Request,
        started: float,
        status: str,
        *,
        usage: Usage | None = None,
        backend: str = "",
        ctx: RequestContext | None = None,
    ) -> None:
        """Counts the end of a request that began at `started` (perf_counter): its status and,
        for a Generate, its tokens, cost and latencies."""
        domain = self.domain
        name = domain.backend(usage.backend if usage is not None else backend)
        tier = domain.tier(name)
        kind, status = labels.kind(kind), labels.status(status)
        key = (kind, name, tier, domain.profile(request, ctx), status)
        counter = self._requests.get(key)
        if counter is None:
            counter = self._requests[key] = self.requests.labels(*key)
        counter.inc()
        if status == "OK":
            total_s = usage.total_ms / 1e3 if usage is not None else time.perf_counter() - started
            self._duration(kind, name, tier).observe(total_s)
        if usage is None:
            return
        per = self._backends.get((name, tier))
        if per is None:
            per = self._backends[(name, tier)] = _PerBackend(self, name, tier)
        if usage.prompt_tokens:
            per.prompt.inc(usage.prompt_tokens)
        if usage.completion_tokens:
            per.completion.inc(usage.completion_tokens)
        if usage.cost_usd > 0:
            per.cost.inc(usage.cost_usd)
        if usage.ttft_ms > 0:
            per.ttft.observe(usage.ttft_ms / 1e3)
            gaps = usage.completion_tokens - 1
            if gaps > 0 and usage.total_ms > usage.ttft_ms:
                per.inter_token.observe((usage.total_ms - usage.ttft_ms) / 1e3 / gaps)

    def _duration(self, kind: str, backend: str, tier: str) -> Histogram:
        key = (kind, backend, tier)
        child = self._durations.get(key)
        if child is None:
            child = self._durations[key] = self.duration.labels(*key)
        return child
