"""Metrics read from the router's state at scrape time: nothing on the request path pays for them.

Per backend of the current config version: its info (tier, type, model), its health state
(healthy, unhealthy, ejected: one series each, 1 for the current one), the ejections so far
(router/runtime/resilience.py), the generations admitted and not yet finished (in flight), the
requests the backend reports queued, its capacity, and the tokens admitted to it over the last
minute. Per budget that names a tenant (a budget policy reporting `budget_accounts()`, e.g.
policies/budget.py): its limit, what is used (spent and held) and what is left in the current
window; a `"*"` budget gives every tenant an account of its own, so it has no series (that would
make client text a label). And the config version in use, with the time it was loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from router.core.token_window import TokenWindow

if TYPE_CHECKING:
    from router.runtime.context import Runtime

HEALTH_STATES = ("healthy", "unhealthy", "ejected")
BUDGET_LABELS = ("policy", "tenant", "window", "entry")


@runtime_checkable
class BudgetReporter(Protocol):
    """A policy that can report its budgets (policies/budget.py implements it)."""

    def budget_accounts(self) -> Sequence[tuple[str, str, int, float, float]]:
        """(tenant, window, entry, limit_usd, left_usd) of each budget naming one tenant."""


class StateCollector(Collector):
    """Reads health, load, budgets and the config version of `runtime()` when scraped."""

    def __init__(
        self, runtime: Callable[[], Runtime | None], token_window: TokenWindow | None = None
    ) -> None:
        self._runtime = runtime
        self._window = token_window

    def describe(self) -> list[Metric]:
        """The families this collector exports (without samples), for the registry's checks."""
        return list(_families().values())

    def collect(self) -> Iterator[Metric]:
        families = _families()
        rt = self._runtime()
        if rt is not None:
            _fill(families, rt, self._window)
        yield from families.values()


def _families() -> dict[str, Metric]:
    b = ("backend",)
    return {
        "info": GaugeMetricFamily(
            "tokenrouter_backend_info",
            "A configured backend: its tier, type and model (always 1).",
            labels=("backend", "tier", "type", "model"),
        ),
        "health": GaugeMetricFamily(
            "tokenrouter_backend_health",
            "Backend health: 1 for its current state (healthy, unhealthy, ejected), else 0.",
            labels=("backend", "state"),
        ),
        "ejections": CounterMetricFamily(
            "tokenrouter_backend_ejections",
            "Outlier ejections of a backend (consecutive failed requests).",
            labels=b,
        ),
        "in_flight": GaugeMetricFamily(
            "tokenrouter_backend_in_flight",
            "Generations admitted to a backend and not yet finished.",
            labels=b,
        ),
        "queued": GaugeMetricFamily(
            "tokenrouter_backend_queued", "Requests the backend reports queued.", labels=b
        ),
        "capacity": GaugeMetricFamily(
            "tokenrouter_backend_capacity",
            "Concurrent generations the backend can run (0: unknown).",
            labels=b,
        ),
        "window": GaugeMetricFamily(
            "tokenrouter_backend_window_tokens",
            "Tokens admitted to a backend over the last minute.",
            labels=b,
        ),
        "limit": GaugeMetricFamily(
            "tokenrouter_budget_limit_usd",
            "A tenant budget's limit per window.",
            labels=BUDGET_LABELS,
        ),
        "used": GaugeMetricFamily(
            "tokenrouter_budget_spent_usd",
            "Spent (and held by running requests) in a tenant budget's current window.",
            labels=BUDGET_LABELS,
        ),
        "left": GaugeMetricFamily(
            "tokenrouter_budget_left_usd",
            "Left of a tenant budget in its current window.",
            labels=BUDGET_LABELS,
        ),
        "config": GaugeMetricFamily(
            "tokenrouter_config_info",
            "The config version in use (always 1).",
            labels=("version",),
        ),
        "loaded": GaugeMetricFamily(
            "tokenrouter_config_loaded_timestamp_seconds",
            "When the config version in use was loaded (Unix time).",
        ),
    }


def _fill(f: dict[str, Metric], rt: Runtime, window: TokenWindow | None) -> None:
    health = rt.health
    for name, backend in rt.backends.items():
        cfg = backend.config
        f["info"].add_metric([name, str(cfg.tier), str(cfg.type), cfg.model], 1)
        state = health.status(name)
        for s in HEALTH_STATES:
            f["health"].add_metric([name, s], 1 if s == state else 0)
        f["ejections"].add_metric([name], health.ejections_total(name))
        load = backend.load()
        f["in_flight"].add_metric([name], backend.admitted)
        f["queued"].add_metric([name], load.queued)
        f["capacity"].add_metric([name], load.capacity)
        if window is not None:
            f["window"].add_metric([name], window.used(name))
    for policy_name, policy in rt.pipeline.policies.items():
        if not isinstance(policy, BudgetReporter):
            continue
        for tenant, span, entry, limit, left in policy.budget_accounts():
            key = [policy_name, tenant, span, str(entry)]
            f["limit"].add_metric(key, limit)
            f["used"].add_metric(key, limit - left)
            f["left"].add_metric(key, left)
    f["config"].add_metric([rt.loaded.version], 1)
    f["loaded"].add_metric([], rt.loaded_at)
