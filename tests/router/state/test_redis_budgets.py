"""The Redis budget store on a real redis-server: exact reserve / settle / release, many
clients racing for one budget, leases that expire when their owner stops renewing, and
idempotent settles."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from router.state.redis_budgets import RedisBudgetStore


@pytest.fixture
async def stores(redis_server, request) -> AsyncIterator[list[RedisBudgetStore]]:
    """Three stores (three connections, as three routers would have) on one fresh prefix."""
    prefix = f"test:{request.node.name}:"
    made = [RedisBudgetStore.from_url(redis_server.url, prefix=prefix) for _ in range(3)]
    yield made
    for store in made:
        await store.aclose()


async def test_reserve_settle_release_account_exactly(stores) -> None:
    """Holds count against the limit; settle charges the real amount; release gives back."""
    store = stores[0]
    first = await store.reserve("acme", 1.0, 2.5, 3600)
    second = await store.reserve("acme", 1.0, 2.5, 3600)
    assert first and second
    assert await store.reserve("acme", 1.0, 2.5, 3600) is None
    assert store.available("acme", 2.5, 3600) == pytest.approx(0.5)
    assert await store.settle(first, 0.25)
    assert await store.release(second)
    assert await stores[1].refresh("acme", 2.5, 3600) == pytest.approx(2.25)


async def test_racing_routers_never_overspend(stores) -> None:
    """500 concurrent reserves of $0.01 from three clients against a $1 budget: exactly 100
    are admitted, and once all settle the spend is $1.00, not a cent more."""

    async def one(i: int) -> bool:
        store = stores[i % 3]
        lease = await store.reserve("race", 0.01, 1.0, 3600)
        if lease is None:
            return False
        await store.settle(lease, 0.01)
        return True

    admitted = await asyncio.gather(*(one(i) for i in range(500)))
    assert sum(admitted) == 100
    assert await stores[2].refresh("race", 1.0, 3600) == pytest.approx(0.0, abs=1e-9)


async def test_a_dead_routers_holds_expire_with_their_lease(redis_server, request) -> None:
    """Holds not renewed expire after the lease, and the next reserve gets their room back;
    renewed ones stay."""
    prefix = f"test:{request.node.name}:"
    dying = RedisBudgetStore.from_url(redis_server.url, prefix=prefix, lease_s=0.3)
    living = RedisBudgetStore.from_url(redis_server.url, prefix=prefix, lease_s=0.3)
    try:
        assert await dying.reserve("lease", 1.0, 2.0, 3600)
        kept = await living.reserve("lease", 1.0, 2.0, 3600)
        assert await living.reserve("lease", 1.0, 2.0, 3600) is None
        for _ in range(4):
            await asyncio.sleep(0.15)
            assert await living.renew([kept]) == 1
        assert await living.reserve("lease", 1.0, 2.0, 3600) is not None  # the dead one's room
        assert await living.reserve("lease", 1.0, 2.0, 3600) is None
    finally:
        await dying.aclose()
        await living.aclose()


async def test_settle_is_idempotent_and_charges_an_expired_hold(redis_server, request) -> None:
    """A retried settle charges once; a settle after the lease expired still charges the real
    cost (the tokens were spent); release after settle does nothing."""
    store = RedisBudgetStore.from_url(
        redis_server.url, prefix=f"test:{request.node.name}:", lease_s=0.2
    )
    try:
        lease = await store.reserve("idem", 1.0, 10.0, 3600)
        assert await store.settle(lease, 0.5) and not await store.settle(lease, 0.5)
        assert not await store.release(lease)
        late = await store.reserve("idem", 1.0, 10.0, 3600)
        await asyncio.sleep(0.3)
        assert await store.renew([late]) == 0  # expired: not revived
        await store.reserve("idem", 0.0, 10.0, 3600)  # sweeps the expired hold
        assert await store.settle(late, 0.75)
        assert await store.refresh("idem", 10.0, 3600) == pytest.approx(10.0 - 1.25 - 0.0)
    finally:
        await store.aclose()


async def test_windows_are_separate_accounts(redis_server, request) -> None:
    """Spend in one window does not count in the next (the clock picks the window)."""
    now = [7200.0]
    store = RedisBudgetStore.from_url(
        redis_server.url, prefix=f"test:{request.node.name}:", clock=lambda: now[0]
    )
    try:
        await store.settle(await store.reserve("win", 1.0, 1.0, 3600), 1.0)
        assert await store.reserve("win", 1.0, 1.0, 3600) is None
        now[0] += 3600
        assert await store.reserve("win", 1.0, 1.0, 3600) is not None
    finally:
        await store.aclose()
