"""Faults with shared state, on real router processes and a real Redis: a router killed
mid-stream gives its holds and slots back within the lease; Redis killed under load gives the
configured behaviour (budgets fail closed: UNAVAILABLE naming the state; or open: served on
local figures), nothing stalls, and once Redis is back the service recovers by itself with
every served request charged exactly once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import grpc
import pytest

from router.state.fleet import FOREVER_S
from tests.fleet import PREFIX, settled, spent_and_held
from tests.router_process import RouterProcess, generate, request

SLOW_TEXT = " ".join(f"w{i}" for i in range(40))

CRASH = """
server: {{watch_config: false, grace_period_s: 5}}
state: {{backend: redis, url: "{url}", prefix: "{prefix}", lease_s: 1, sync_interval_s: 0.2}}
backends:
  slow: {{type: scripted, model: m, text: "{text}", token_interval_ms: 100, max_concurrency: 2,
          price: {{output_per_mtok: 1000}}}}
policies:
  budget: {{type: budget, parameters: {{budgets: [{{tenant: crash, limit_usd: 1, window: 1d}}]}}}}
profiles:
  default: {{policies: [{{policy: budget}}]}}
"""

OUTAGE = """
server: {{watch_config: false, grace_period_s: 5}}
state: {{backend: redis, url: "{url}", prefix: "{prefix}", lease_s: 2, sync_interval_s: 0.2,
         retry_s: 0.2, timeout_ms: 1000, on_unavailable: {{budgets: {mode}}}}}
backends:
  gpu: {{type: scripted, model: m, text: "a b c d", token_interval_ms: 5,
         price: {{output_per_mtok: 1000}}}}
policies:
  budget: {{type: budget, parameters: {{budgets: [{{tenant: acme, limit_usd: 100, window: 1d}}]}}}}
profiles:
  default: {{policies: [{{policy: budget}}]}}
"""


async def start(tmp_path: Path, text: str, n: int) -> list[RouterProcess]:
    path = tmp_path / "router.yaml"
    path.write_text(text)
    return list(await asyncio.gather(*(RouterProcess.start(path) for _ in range(n))))


async def test_killed_router_gives_holds_and_slots_back_within_the_lease(
    redis_server, tmp_path
) -> None:
    """A router SIGKILLed with two streams running on a backend whose max_concurrency (2) is
    shared: the other router is refused while the dead one's slots are leased, then served
    within the lease (1 s) plus a sync, and no budget stays held."""
    prefix = PREFIX + "crash:"
    a, b = await start(
        tmp_path, CRASH.format(url=redis_server.url, prefix=prefix, text=SLOW_TEXT), 2
    )
    try:
        streams = [a.stub.Generate(request("crash", 40), timeout=30) for _ in range(2)]
        for stream in streams:
            async for message in stream:
                if message.HasField("delta"):
                    break
        slots = await spent_and_held(redis_server.url, "capacity/slots:slow", FOREVER_S, prefix)
        assert slots[1] == pytest.approx(2)
        await a.kill()
        killed = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await generate(b.stub, request("crash", 4))
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "max_concurrency 2 across routers" in refused.value.details()
        while True:
            try:
                usage = await generate(b.stub, request("crash", 4))
                break
            except grpc.aio.AioRpcError as exc:
                assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, exc.details()
                assert time.monotonic() - killed < 5, exc.details()
                await asyncio.sleep(0.1)
        assert time.monotonic() - killed < 1 + 2.5
        spent = await settled(redis_server.url, "budgets/budget:0:crash:1d", 86400, prefix)
        assert spent == pytest.approx(usage.cost_usd)  # the dead router's holds are gone
        for stream in streams:
            stream.cancel()
    finally:
        await b.stop()


async def load(routers: list[RouterProcess], tenant: str, until: float, log: list) -> None:
    """Requests one after another until `until`: (start, end, code, details, cost) each."""
    i = 0
    while time.monotonic() < until:
        started = time.monotonic()
        try:
            usage = await generate(routers[i % len(routers)].stub, request(tenant, 4))
            log.append((started, time.monotonic(), grpc.StatusCode.OK, "", usage.cost_usd))
        except grpc.aio.AioRpcError as exc:
            log.append((started, time.monotonic(), exc.code(), exc.details(), 0.0))
            await asyncio.sleep(0.01)
        i += 1


async def outage(redis_server, tmp_path, mode: str) -> tuple[list, float, float, float]:
    """Two routers under load (8 clients: 4 on a budgeted tenant, 4 on a free one); Redis is
    killed after 1 s and back 2 s later; load goes on 3 s more. Returns the log, when Redis
    died and came back, and the budget's settled spend."""
    prefix = f"{PREFIX}outage-{mode}:"
    text = OUTAGE.format(url=redis_server.url, prefix=prefix, mode=mode)
    routers = await start(tmp_path, text, 2)
    try:
        log: list = []
        free: list = []
        until = time.monotonic() + 6
        clients = [load(routers, "acme", until, log) for _ in range(4)]
        clients += [load(routers, "free", until, free) for _ in range(4)]
        running = asyncio.gather(*clients)
        await asyncio.sleep(1)
        redis_server.kill()
        down = time.monotonic()
        await asyncio.sleep(2)
        redis_server.start()
        up = time.monotonic()
        await asyncio.wait_for(running, 30)  # nothing is stuck
        for router in routers:
            assert router.proc.returncode is None  # no crash
        during = [f for f in free if down + 0.5 < f[0] < up - 0.2]
        assert during and all(f[2] == grpc.StatusCode.OK for f in during)  # no budget: served
        spent = await settled(redis_server.url, "budgets/budget:0:acme:1d", 86400, prefix)
        return log, down, up, spent
    finally:
        for router in routers:
            await router.stop()


async def test_redis_killed_budgets_fail_closed_and_recover(redis_server, tmp_path) -> None:
    """Fail closed: while Redis is down, budgeted requests get UNAVAILABLE naming the shared
    state at once; after it is back they are served again, and the spend in Redis is exactly
    what the served requests cost."""
    log, down, up, spent = await outage(redis_server, tmp_path, "closed")
    assert all(end - start < 5 for start, end, *_ in log)
    during = [e for e in log if down + 0.5 < e[0] < up - 0.2]
    assert during and all(e[2] == grpc.StatusCode.UNAVAILABLE for e in during)
    assert all("shared state" in e[3] and "fail closed" in e[3] for e in during)
    after = [e for e in log if e[0] > up + 1.5]
    late = [(e[0] - up, e[2], e[3]) for e in after if e[2] != grpc.StatusCode.OK]
    assert after and not late, late[:3]
    assert spent == pytest.approx(sum(e[4] for e in log))


async def test_redis_killed_budgets_fail_open_and_catch_up(redis_server, tmp_path) -> None:
    """Fail open: budgeted requests go on being served while Redis is down; once it is back
    their spend is charged to Redis exactly once (nothing lost, nothing doubled)."""
    log, down, up, spent = await outage(redis_server, tmp_path, "open")
    assert all(end - start < 5 for start, end, *_ in log)
    during = [e for e in log if down + 0.5 < e[0] < up - 0.2]
    assert during and all(e[2] == grpc.StatusCode.OK for e in during)
    assert spent == pytest.approx(sum(e[4] for e in log))
