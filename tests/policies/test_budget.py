"""budget policy and store: windows, reserve/settle/release, filter and batch constraints."""

from __future__ import annotations

import pytest

from policies.budget import create
from router.core.budgets import MemoryBudgetStore
from router.core.errors import ResourceExhausted
from router.core.framework import SideLimit
from router.core.handle import PluginHandle
from router.core.types import Usage
from tests.conftest import backend_view, context

API = backend_view("api", price={"per_request": 1.0})


class Clock:
    def __init__(self) -> None:
        self.now = 3600.0 * 10

    def __call__(self) -> float:
        return self.now


def make(limit: float = 2.5, tenant: str = "acme", clock: Clock | None = None):
    store = MemoryBudgetStore(clock or Clock())
    spec = {"tenant": tenant, "limit_usd": limit, "window": "1h"}
    return create("budget", {"budgets": [spec]}, PluginHandle(budget_store=store)), store


def test_reserve_settle_release_account_exactly():
    """Holds count against the budget; settle charges the real cost; release gives it back."""
    policy, store = make()
    ctx = context(tenant="acme")
    first = policy.reserve(ctx, API)
    second = policy.reserve(ctx, API)
    assert "$0.500000 left" in policy.filter(ctx, API)
    first.settle(Usage(cost_usd=0.25))
    second.release()
    assert store.held_count() == 0
    assert store.available("budget:0:acme:1h", 2.5, 3600) == pytest.approx(2.25)


def test_budget_resets_with_the_window():
    """A fixed window: spend in one hour does not count in the next."""
    clock = Clock()
    policy, _ = make(limit=1.0, clock=clock)
    policy.reserve(context(tenant="acme"), API).settle(Usage(cost_usd=1.0))
    assert policy.filter(context(tenant="acme"), API) is not None
    clock.now += 3600
    assert policy.filter(context(tenant="acme"), API) is None


def test_other_tenants_and_wildcard():
    """A named budget binds its tenant only; '*' gives each tenant its own budget."""
    policy, _ = make(limit=0.5)
    assert policy.filter(context(tenant="other"), API) is None
    wildcard, _ = make(limit=0.5, tenant="*")
    assert "budget other/1h" in wildcard.filter(context(tenant="other"), API)


def test_reserve_beyond_budget_raises_resource_exhausted():
    """A hold that no longer fits raises RESOURCE_EXHAUSTED naming the budget and leaks nothing."""
    policy, store = make(limit=1.0)
    policy.reserve(context(tenant="acme"), API)
    with pytest.raises(ResourceExhausted, match="budget acme"):
        policy.reserve(context(tenant="acme"), API)
    assert store.held_count() == 1


def test_constraints_share_one_limit_per_tenant_budget():
    """A batch of one tenant's requests shares a single SideLimit with worst-case weights."""
    policy, _ = make(limit=1.5)
    batch = [context(tenant="acme"), context(tenant="acme"), context(tenant="zed")]
    (side,) = policy.constraints(batch, [API, backend_view("edge")])
    assert isinstance(side, SideLimit) and side.limit == 1.5
    assert side.weights[(0, "api")] == 1.0 and (2, "api") not in side.weights


@pytest.mark.parametrize("window", ["1w", "", -5, "0s"])
def test_bad_windows_are_rejected(window):
    """Windows must be positive durations like 30m, 1h, 1d."""
    with pytest.raises(ValueError, match=r"budgets\.0\.window"):
        spec = {"tenant": "a", "limit_usd": 1, "window": window}
        create("budget", {"budgets": [spec]}, PluginHandle())


def test_two_budgets_with_the_same_window_keep_separate_accounts():
    """A tenant-wide and a per-tenant budget of the same window each hold the request once."""
    store = MemoryBudgetStore(Clock())
    budgets = [
        {"tenant": "*", "limit_usd": 5, "window": "1h"},
        {"tenant": "acme", "limit_usd": 3, "window": "1h"},
    ]
    policy = create("budget", {"budgets": budgets}, PluginHandle(budget_store=store))
    policy.reserve(context(tenant="acme"), API)
    assert "budget acme/1h: $2.000000 left" in policy.filter(
        context(tenant="acme", max_tokens=100), backend_view("x", price={"per_request": 2.5})
    )
    sides = policy.constraints([context(tenant="acme")], [API])
    assert sorted(s.limit for s in sides) == [2.0, 4.0]


def test_ended_windows_are_swept_so_memory_stays_bounded():
    """Spend of windows that have ended is dropped, so many short-lived tenants leave nothing
    behind, while open holds and the current window's spend are kept."""
    clock = Clock()
    store = MemoryBudgetStore(clock, sweep_every_s=60)
    for i in range(1000):
        hold = store.reserve(f"budget:0:tenant-{i}:1h", 0.1, 1.0, 3600)
        store.settle(hold, 0.1)
    open_hold = store.reserve("budget:0:long:1h", 0.1, 1.0, 3600)
    assert store.tracked_count() == 1001
    clock.now += 3600  # the next window
    kept = store.reserve("budget:0:new:1h", 0.2, 1.0, 3600)
    assert store.tracked_count() == 2  # the open hold's window and the new one
    store.settle(open_hold, 0.1)  # settling a hold of an ended window still works
    assert store.held_count() == 1
    assert store.available("budget:0:new:1h", 1.0, 3600) == pytest.approx(0.8)
    store.release(kept)
    clock.now += 60
    store.reserve("budget:0:other:1h", 0.1, 1.0, 3600)
    assert store.tracked_count() == 2  # the ended window's late spend is gone too


def test_an_infinite_limit_is_refused():
    """A budget limit of inf or NaN is a parameter error, not an unlimited budget."""
    for value in (float("inf"), float("nan")):
        with pytest.raises(ValueError, match="finite number"):
            spec = {"tenant": "a", "limit_usd": value, "window": "1h"}
            create("budget", {"budgets": [spec]}, PluginHandle())
