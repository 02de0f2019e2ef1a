"""The synchronous budget store in front of Redis: local holds confirmed in Redis, exact across
routers, and the configured behaviour while Redis is down (closed: refused; open: journalled,
charged once on recovery), with finishes retried until Redis has them."""

from __future__ import annotations

import asyncio
import time

import pytest

from router.config.sections import FailMode
from router.core.errors import StateUnavailable
from router.state.shared_budgets import SharedBudgetStore, settle_all

HOUR = 3600.0


def store(link, mode: FailMode = FailMode.CLOSED, kind: str = "budgets") -> SharedBudgetStore:
    return SharedBudgetStore(link, kind, mode, time.time)


async def wait_for(check, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_confirm_is_exact_across_routers(links) -> None:
    """Two routers each hold $0.60 locally of a $1 budget; Redis admits only one of them, and
    the other's local hold is dropped."""
    a, b = store(links()), store(links())
    ha, hb = a.reserve("acme", 0.6, 1.0, HOUR), b.reserve("acme", 0.6, 1.0, HOUR)
    assert ha and hb  # each router's own figure said it fits
    results = [await a.confirm(ha), await b.confirm(hb)]
    assert results == [True, False]
    assert b.available("acme", 1.0, HOUR) == pytest.approx(0.4)  # Redis' figure, learnt
    assert b.reserve("acme", 0.6, 1.0, HOUR) is None  # refused without asking Redis


async def test_settle_charges_real_cost_and_release_gives_back(links) -> None:
    """A settled hold charges what was spent, a released one nothing, both in Redis."""
    a, b = store(links()), store(links())
    h1, h2 = a.reserve("t", 0.5, 1.0, HOUR), a.reserve("t", 0.4, 1.0, HOUR)
    assert await a.confirm(h1) and await a.confirm(h2)
    a.settle(h1, 0.1)
    a.release(h2)
    assert a.available("t", 1.0, HOUR) == pytest.approx(0.9)  # at once, before Redis answers
    await settle_all([a], 2.0)
    await b.refresh("t", 1.0, HOUR)
    assert b.available("t", 1.0, HOUR) == pytest.approx(0.9)
    assert a.pending() == 0


async def test_closed_refuses_while_redis_is_down(links, redis_server) -> None:
    """Fail closed: with Redis killed, confirm raises UNAVAILABLE naming the store and gives the
    local hold back; calls within retry_s fail without waiting on the network."""
    link = links(retry_s=30)
    s = store(link)
    redis_server.kill()
    try:
        hold = s.reserve("down", 0.1, 1.0, HOUR)
        assert hold is not None
        with pytest.raises(StateUnavailable, match=r"unreachable.*budgets fail closed"):
            await s.confirm(hold)
        assert not link.up
        assert s.available("down", 1.0, HOUR) == pytest.approx(1.0)
        started = time.perf_counter()
        with pytest.raises(StateUnavailable):
            await s.confirm(s.reserve("down", 0.1, 1.0, HOUR))
        assert time.perf_counter() - started < 0.05  # no connect attempt while counted down
    finally:
        redis_server.start()


async def test_open_accounts_locally_and_charges_once_on_recovery(links, redis_server) -> None:
    """Fail open: with Redis down a hold is admitted on local figures and its spend journalled;
    once Redis is back the spend is charged exactly once, and nothing stays held."""
    link = links(retry_s=0.1, lease_s=3)
    s = store(link, FailMode.OPEN)
    link.start()
    redis_server.kill()
    try:
        hold = s.reserve("open", 0.3, 1.0, HOUR)
        assert await s.confirm(hold)
        assert s.unconfirmed == 1
        s.settle(hold, 0.25)
        assert s.available("open", 1.0, HOUR) == pytest.approx(0.75)
    finally:
        redis_server.start()
    await wait_for(lambda: s.pending() == 0)
    other = store(links())
    await other.refresh("open", 1.0, HOUR)
    assert other.available("open", 1.0, HOUR) == pytest.approx(0.75)
    await s.maintain()  # a second flush charges nothing more
    assert s.available("open", 1.0, HOUR) == pytest.approx(0.75)


async def test_finish_missed_during_outage_is_retried(links, redis_server) -> None:
    """A hold confirmed before an outage and settled during it is settled in Redis once it is
    back (idempotent per hold): the spend counts once and the hold is gone."""
    link = links(retry_s=0.1, lease_s=3)
    s = store(link)
    link.start()
    hold = s.reserve("retry", 0.5, 1.0, HOUR)
    assert await s.confirm(hold)
    redis_server.kill()
    try:
        s.settle(hold, 0.2)
        await asyncio.sleep(0.1)
        assert s.pending() == 1  # Redis has not acknowledged it
    finally:
        redis_server.start()
    await wait_for(lambda: s.pending() == 0)
    other = store(links())
    await other.refresh("retry", 1.0, HOUR)
    assert other.available("retry", 1.0, HOUR) == pytest.approx(0.8)


async def test_running_holds_are_renewed_and_dead_ones_expire(links) -> None:
    """A running hold outlives its lease while its router renews it; a router that stops
    renewing (dead) gives its hold back once the lease lapses."""
    live_link, dead_link = links(lease_s=1), links(lease_s=1)
    live, dead = store(live_link), store(dead_link)
    live_link.start()  # only the live router's loop renews
    h1, h2 = live.reserve("lease", 0.5, 1.0, HOUR), dead.reserve("lease", 0.5, 1.0, HOUR)
    assert await live.confirm(h1) and await dead.confirm(h2)
    await asyncio.sleep(1.6)
    probe = store(links())
    assert probe.reserve("lease", 0.5, 1.0, HOUR) is not None  # the local figure is stale
    hold = probe.reserve("lease", 0.5, 1.0, HOUR)
    assert await probe.confirm(hold)  # the dead router's $0.50 came back
    third = probe.reserve("lease", 0.01, 1.0, HOUR)
    assert third is None or not await probe.confirm(third)  # the live hold still counts


async def test_cancelled_confirm_leaves_nothing_held(links) -> None:
    """A request cancelled while its hold is being confirmed gives it back, whether or not
    Redis took it."""
    s = store(links())
    hold = s.reserve("cancel", 1.0, 1.0, HOUR)
    task = asyncio.create_task(s.confirm(hold))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await settle_all([s], 2.0)
    other = store(links())
    await other.refresh("cancel", 1.0, HOUR)
    assert other.available("cancel", 1.0, HOUR) == pytest.approx(1.0)


async def test_a_figure_that_refuses_locally_is_synced(links) -> None:
    """A router whose last figure says the budget is gone (another router's holds) refuses
    locally without asking Redis; its sync re-reads the account, so once those holds end it
    admits again."""
    a_link = links(sync_interval_s=0.1)
    a, b = store(a_link), store(links())
    a_link.start()
    held = b.reserve("sync", 1.0, 1.0, HOUR)
    assert await b.confirm(held)
    probe = a.reserve("sync", 0.5, 1.0, HOUR)
    assert not await a.confirm(probe)  # learns that nothing is left
    assert a.available("sync", 1.0, HOUR) == pytest.approx(0.0)
    b.release(held)
    await settle_all([b], 2.0)
    await wait_for(lambda: a.available("sync", 1.0, HOUR) > 0.99)
    assert await a.confirm(a.reserve("sync", 0.5, 1.0, HOUR))
