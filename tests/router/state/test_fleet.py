"""Three real router processes sharing one real Redis: one tenant budget and one per-minute
request limit hold exactly for the fleet, every process reports its config version, and an
admin reload through one reaches all."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
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


pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fleet(redis_server, tmp_path_factory) -> AsyncIterator[list[RouterProcess]]:
    """Three `serve` processes on one config naming the module's Redis."""
    path = Path(tmp_path_factory.mktemp("fleet")) / "router.yaml"
    path.write_text(CONFIG.format(url=redis_server.url, prefix=PREFIX, text=TEXT, cost=COST))
    routers = await asyncio.gather(*(RouterProcess.start(path) for _ in range(3)))
    yield list(routers)
    for router in routers:
        await router.stop()


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
    async def one(i: int) -> pb.Usage | grpc.aio.AioRpcError:
        try:
            return await generate(fleet[i % 3].stub, request(tenant, max_tokens))
        except grpc.aio.AioRpcError as exc:
            return exc

    results = await asyncio.gather(*(one(i) for i in range(n)))
    served = [r for r in results if isinstance(r, pb.Usage)]
    refused = [r for r in results if not isinstance(r, pb.Usage)]
    return served, refused


async def test_three_routers_never_overspend_one_budget(fleet, redis_server) -> None:
    """500 concurrent requests over three processes against a $0.05 budget (worst case $0.002,
    real cost $0.001 each): the settled spend never passes the limit (overspend 0) and equals
    what the served requests cost; every other request is RESOURCE_EXHAUSTED naming the budget."""
    served, refused = await run_all(fleet, "acme", 500, 16)
    spent = await settled(redis_server.url, "budgets/budget:0:acme:1d", 86400)
    assert spent <= 0.05 + 1e-9
    assert spent == pytest.approx(sum(u.cost_usd for u in served))
    assert len(served) >= 25  # at least the worst-case count fits
    assert {u.backend for u in served} == {"gpu"}
    for exc in refused:
        assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, exc.details()
        assert "budget acme/1d" in exc.details()


async def test_per_minute_limit_is_exact_across_three_routers(fleet) -> None:
    """150 concurrent requests over three processes against 40 requests per minute: exactly
    40 are served, the rest get RESOURCE_EXHAUSTED naming the limit."""
    if time.time() % 60 > 45:  # not across a minute boundary: the window would reset
        await asyncio.sleep(61 - time.time() % 60)
    served, refused = await run_all(fleet, "rl", 150, 4)
    assert len(served) == 40
    for exc in refused:
        assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, exc.details()
        assert "rate limit rl: requests per 1m" in exc.details()


async def test_every_process_reports_its_version_and_reloads_reach_all(fleet, tmp_path) -> None:
    """GetConfig on any process lists the three with the version each runs; a config text sent
    to one process's ReloadConfig is applied by the other two on their next sync."""
    info = await fleet[0].admin.GetConfig(pb.GetConfigRequest())
    deadline = time.monotonic() + 10
    while len(info.processes) < 3 and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        info = await fleet[0].admin.GetConfig(pb.GetConfigRequest())
    assert len(info.processes) == 3
    assert {p.config_version for p in info.processes} == {info.version}
    new_text = info.text.replace("requests_per_minute: 40", "requests_per_minute: 41")
    reloaded = await fleet[1].admin.ReloadConfig(pb.ReloadConfigRequest(text=new_text))
    assert reloaded.version != info.version
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        versions = [(await r.admin.GetConfig(pb.GetConfigRequest())).version for r in fleet]
        third = await fleet[2].admin.GetConfig(pb.GetConfigRequest())
        listed = {p.config_version for p in third.processes}
        if set(versions) == {reloaded.version} and listed == {reloaded.version}:
            break
        await asyncio.sleep(0.1)
    assert set(versions) == {reloaded.version}
    assert listed == {reloaded.version}
