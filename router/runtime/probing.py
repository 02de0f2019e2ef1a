"""Backend probing: every backend of the current version, concurrently, on a fixed interval.

Each probe is bounded by `health.probe_timeout_s`; its outcome goes to the version's
HealthTracker (router/runtime/resilience.py), which the policy pipeline reads as `health_reason`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from router.core.backend import Backend
from router.runtime.context import Runtime


async def probe(rt: Runtime) -> None:
    """Probes every backend of `rt` once, concurrently, and records the outcome."""
    timeout = rt.config.health.probe_timeout_s

    async def one(name: str, backend: Backend) -> None:
        try:
            await asyncio.wait_for(backend.probe(), timeout)
        except Exception as exc:  # any failure to answer is a failed probe
            rt.health.probe_failed(name, str(exc) or type(exc).__name__)
        else:
            rt.health.probe_ok(name)

    await asyncio.gather(*(one(n, b) for n, b in rt.backends.items()))


async def probe_forever(current: Callable[[], Runtime]) -> None:
    """Probes the version `current()` returns, then sleeps its probe interval; until cancelled."""
    while True:
        await probe(current())
        await asyncio.sleep(current().config.health.probe_interval_s)
