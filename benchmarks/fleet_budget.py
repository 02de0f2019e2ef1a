"""fleet_budget: the overspend of one tenant budget shared by three router processes.

The fleet of the three-process budget test (tests/fleet.py): three `tokenrouter serve`
processes on one real redis-server (loopback, started here) with a $0.05 daily budget for
`acme`, each served request costing $0.001 (worst case held at admission: $0.002). 500
concurrent Generates spread over the three; once every hold is settled, the spend read from
Redis is compared with the limit (overspend = spend above it, target 0) and with the cost the
served requests reported (the charge error, target 0). Full runs repeat it `rounds` times on a
fresh key prefix each.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc

from benchmarks.harness import Check, Section

LIMIT_USD = 0.05
REQUESTS = 500
COLUMNS = ["round", "served", "refused", "other_errors", "spend_usd", "overspend_usd"]
COLUMNS += ["charge_error_usd", "seconds"]


async def _round(url: str, prefix: str, folder: Path) -> dict[str, Any]:
    from tests.fleet import run_all, settled, start_fleet

    fleet = await start_fleet(folder / f"{prefix.strip(':')}.yaml", url, prefix=prefix)
    try:
        started = time.perf_counter()
        served, errors = await run_all(fleet, "acme", REQUESTS, 16)
        spend = await settled(url, "budgets/budget:0:acme:1d", 86400, prefix)
        seconds = time.perf_counter() - started
    finally:
        for router in fleet:
            await router.stop()
    refused = [e for e in errors if e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED]
    return {
        "served": len(served),
        "refused": len(refused),
        "other_errors": len(errors) - len(refused),
        "spend_usd": spend,
        "overspend_usd": max(0.0, spend - LIMIT_USD),
        "charge_error_usd": abs(spend - sum(u.cost_usd for u in served)),
        "seconds": seconds,
    }


def run(quick: bool) -> Section:
    from tests.redis_server import start_redis_server

    rounds = 1 if quick else 3
    rows = []
    with start_redis_server() as redis, tempfile.TemporaryDirectory() as folder:
        for i in range(1, rounds + 1):
            row = asyncio.run(_round(redis.url, f"bench{i}:", Path(folder)))
            rows.append({"round": i, **row})
    worst = max(r["overspend_usd"] for r in rows)
    summary = [
        Check.at_most("overspend, 3 processes, 500 requests", worst, 0, "$"),
        Check.at_most(
            "charge error (spend vs served cost)",
            max(r["charge_error_usd"] for r in rows),
            1e-9,
            "$",
        ),
        Check.info("served of 500 ($0.05 at $0.001 each)", min(r["served"] for r in rows), ""),
        Check.at_most(
            "errors other than RESOURCE_EXHAUSTED", float(sum(r["other_errors"] for r in rows)), 0
        ),
    ]
    notes = [
        f"{rounds} round(s); each: three fresh processes, {REQUESTS} concurrent Generates "
        "spread round-robin, spend read from Redis once no hold is left. Holds are the worst "
        "case ($0.002) until settled, so fewer than 50 may be served while holds are "
        "outstanding; the spend never passes the limit."
    ]
    return Section(COLUMNS, rows, summary, notes=notes, data={"limit_usd": LIMIT_USD})
