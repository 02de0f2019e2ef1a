"""shared_state: what the Redis stores add to Route and Generate vs the in-memory ones.

One router in this process (the calls are sequential, so the figures are the path's own
latency, not the gRPC face's) on a scripted backend with a budget, a rate limit and a
`max_concurrency` (a fleet slot), once with `state: memory`, once with `state: redis` on a real
redis-server (loopback, started here), then memory again; the better memory run is the
baseline. Route reads cached figures only; Generate confirms each hold in Redis before its
first token (one round trip per account today) and finishes in the background.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import structlog
import yaml

from benchmarks.harness import Check, Section

COLUMNS = ["state", "route_p50_us", "generate_p50_us"]


def _config(state: dict[str, Any]) -> dict[str, Any]:
    return {
        "state": state,
        "server": {"watch_config": False},
        "backends": {
            "gpu": {
                "type": "scripted",
                "model": "m",
                "text": "a b c d",
                "max_concurrency": 64,
                "price": {"output_per_mtok": 1},
            }
        },
        "policies": {
            "budget": {
                "type": "budget",
                "parameters": {"budgets": [{"tenant": "acme", "limit_usd": 1e6, "window": "1d"}]},
            },
            "rate": {
                "type": "rate-limit",
                "parameters": {"limits": [{"tenant": "acme", "requests_per_minute": 10**9}]},
            },
        },
        "profiles": {"default": {"policies": [{"policy": "budget"}, {"policy": "rate"}]}},
    }


async def _measure(state: dict[str, Any], n: int) -> dict[str, float]:
    from router.config import parse_config
    from router.core.types import ChatMessage, Request
    from router.runtime.engine import Router

    router = await Router.create(parse_config(yaml.safe_dump(_config(state)), "<bench>"))
    out: dict[str, float] = {}
    try:
        for kind in ("route", "generate"):
            times = []
            for i in range(n):
                req = Request(str(i), "acme", (ChatMessage("user", "hi"),), 4, 0.7)
                started = time.perf_counter()
                if kind == "route":
                    await router.route(req)
                else:
                    async for _ in router.generate(req):
                        pass
                times.append((time.perf_counter() - started) * 1e6)
            out[kind] = statistics.median(times[n // 10 :])
    finally:
        await router.aclose()
    return out


def run(quick: bool) -> Section:
    from tests.redis_server import start_redis_server

    n = 300 if quick else 3000
    logging = structlog.get_config()  # a line per request would be measured too: warnings only
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
    try:
        with start_redis_server() as redis:
            first = asyncio.run(_measure({"backend": "memory"}, n))
            shared = asyncio.run(_measure({"backend": "redis", "url": redis.url}, n))
            second = asyncio.run(_measure({"backend": "memory"}, n))
    finally:
        structlog.configure(**logging)
    memory = {k: min(first[k], second[k]) for k in first}
    rows = [
        {"state": s, "route_p50_us": round(f["route"]), "generate_p50_us": round(f["generate"])}
        for s, f in (("memory", memory), ("redis", shared))
    ]
    summary = [
        Check.info("Route p50 added by Redis", round(shared["route"] - memory["route"]), "us"),
        Check.info(
            "Generate p50 added by Redis", round(shared["generate"] - memory["generate"]), "us"
        ),
    ]
    return Section(COLUMNS, rows, summary, data={"memory": memory, "redis": shared})
