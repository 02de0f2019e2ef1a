"""A fleet of real `serve` processes on one real Redis, for tests and benchmarks: the config
they share (a budget and a per-minute limit), many concurrent Generates over them, and an
account's figures read straight from Redis."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import grpc
import redis.asyncio as aioredis

from router.api import router_pb2 as pb
from tests.router_process import RouterProcess, generate, request

PREFIX = "fleet:"
COST = 125.0  # $ per million completion tokens: a token costs $0.000125
TEXT = "one two three four five six seven eight"  # 8 tokens: $0.001 per served request

CONFIG = """
server: {{watch_config: false, grace_period_s: 5, admin_loopback: true}}
state: {{backend: redis, url: "{url}", prefix: "{prefix}", sync_interval_s: 0.2}}
backends:
  gpu: {{type: scripted, model: m, text: "{text}", price: {{output_per_mtok: {cost}}}}}
policies:
  budget: {{type: budget, parameters: {{budgets: [{{tenant: acme, limit_usd: 0.05, window: 1d}}]}}}}
  rate: {{type: rate-limit, parameters: {{limits: [{{tenant: rl, requests_per_minute: 40}}]}}}}
profiles:
  default: {{policies: [{{policy: budget}}, {{policy: rate}}]}}
"""


async def start_fleet(
    path: Path, url: str, n: int = 3, prefix: str = PREFIX
) -> list[RouterProcess]:
    """`n` processes on CONFIG naming the Redis at `url`, written to `path`."""
    path.write_text(CONFIG.format(url=url, prefix=prefix, text=TEXT, cost=COST))
    return list(await asyncio.gather(*(RouterProcess.start(path) for _ in range(n))))


async def spent_and_held(
    url: str, key: str, window_s: float, prefix: str = PREFIX
) -> tuple[float, float]:
    """An account's figures in Redis; `key` is "kind/account" (e.g. budgets/budget:0:acme:1d)."""
    client = aioredis.Redis.from_url(url)
    try:
        kind, account = key.split("/")
        window = int(time.time() // window_s)
        b = f"{prefix}{kind}:{{{account}:{window}}}:b"
        spent, held = await client.hmget(b, "spent", "held")
        return float(spent or 0), float(held or 0)
    finally:
        await client.aclose()


async def settled(url: str, key: str, window_s: float, prefix: str = PREFIX) -> float:
    """The account's spend once no hold is left (background settles done)."""
    deadline = time.monotonic() + 10
    while True:
        spent, held = await spent_and_held(url, key, window_s, prefix)
        if held <= 1e-12 or time.monotonic() > deadline:
            assert held <= 1e-12, f"{held} still held"
            return spent
        await asyncio.sleep(0.05)


async def run_all(fleet: list[RouterProcess], tenant: str, n: int, max_tokens: int) -> tuple:
    """`n` concurrent Generates spread over the fleet: (the served usages, the errors)."""

    async def one(i: int) -> pb.Usage | grpc.aio.AioRpcError:
        try:
            return await generate(fleet[i % len(fleet)].stub, request(tenant, max_tokens))
        except grpc.aio.AioRpcError as exc:
            return exc

    results = await asyncio.gather(*(one(i) for i in range(n)))
    served = [r for r in results if isinstance(r, pb.Usage)]
    refused = [r for r in results if not isinstance(r, pb.Usage)]
    return served, refused
