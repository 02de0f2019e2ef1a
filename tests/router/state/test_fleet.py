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

from router.api import router_pb2 as pb
from tests.fleet import run_all, settled, start_fleet
from tests.router_process import RouterProcess

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fleet(redis_server, tmp_path_factory) -> AsyncIterator[list[RouterProcess]]:
    """Three `serve` processes on one config naming the module's Redis."""
    path = Path(tmp_path_factory.mktemp("fleet")) / "router.yaml"
    routers = await start_fleet(path, redis_server.url)
    yield routers
    for router in routers:
        await router.stop()


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
