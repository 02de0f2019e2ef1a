"""Metrics of the shared state in Redis (`state.backend: redis`), read at scrape time.

- `tokenrouter_shared_state_up`: 1 while this process reaches Redis, 0 while it counts it down;
- `tokenrouter_shared_state_outages_total`: times it went down;
- `tokenrouter_shared_state_unconfirmed_total{state}`: admissions made on local figures while
  Redis was down (fail open), per kind of state (budgets, rate_limits, capacity);
- `tokenrouter_shared_state_unconfirmed_usd_total`: what those budget holds spent — the bound on
  this process's overspend during outages;
- `tokenrouter_shared_state_unsent{state}`: settles, releases and fail-open charges not yet
  acknowledged by Redis (retried until they are).
With the in-memory stores (the default) none of these families has samples.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from router.state.shared import SharedState


class SharedStateCollector(Collector):
    """Reads `shared()` (None: state in memory, nothing to export) when scraped."""

    def __init__(self, shared: Callable[[], SharedState | None]) -> None:
        self._shared = shared

    def describe(self) -> list[Metric]:
        return list(_families())

    def collect(self) -> Iterator[Metric]:
        shared = self._shared()
        if shared is None:
            return
        up, outages, unconfirmed, usd, unsent = _families()
        up.add_metric([], 1.0 if shared.link.up else 0.0)
        outages.add_metric([], float(shared.link.outages))
        for store in shared.stores:
            unconfirmed.add_metric([store.kind], float(store.unconfirmed))
            unsent.add_metric([store.kind], float(store.unsent()))
        usd.add_metric([], shared.budgets.unconfirmed_amount)
        yield from (up, outages, unconfirmed, usd, unsent)


def _families() -> tuple[Metric, ...]:
    p = "tokenrouter_shared_state_"
    return (
        GaugeMetricFamily(p + "up", "1 while this process reaches the shared state's Redis."),
        CounterMetricFamily(p + "outages", "Times the shared state's Redis became unreachable."),
        CounterMetricFamily(
            p + "unconfirmed",
            "Admissions on local figures while Redis was down (fail open), by kind of state.",
            labels=("state",),
        ),
        CounterMetricFamily(
            p + "unconfirmed_usd", "USD spent by budget holds admitted while Redis was down."
        ),
        GaugeMetricFamily(
            p + "unsent",
            "Settles, releases and charges Redis has not acknowledged yet, by kind of state.",
            labels=("state",),
        ),
    )
