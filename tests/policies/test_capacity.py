"""capacity policy: free slots, tokens-per-minute windows, and batch constraints."""

from __future__ import annotations

from policies.capacity import create
from router.core.framework import Capacity, SideLimit
from router.core.handle import PluginHandle
from tests.conftest import backend_view, context


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_free_slots_default_to_the_backend_limit_and_can_be_overridden():
    """Slots come from the backend's own limit unless configured; full backends are excluded."""
    policy = create("capacity", {"slots": {"pinned": 2}}, PluginHandle())
    assert policy.filter(context(), backend_view("a", limit=3, in_flight=2)) is None
    assert "all 3 slots in use" in policy.filter(context(), backend_view("a", limit=3, in_flight=3))
    assert policy.filter(context(), backend_view("unlimited", in_flight=99)) is None
    assert "all 2 slots" in policy.filter(context(), backend_view("pinned", in_flight=2))


def test_tokens_per_minute_window_admits_then_refuses_then_recovers():
    """Admitted tokens count for 60 s; beyond the limit the backend is excluded until they age."""
    clock = Clock()
    policy = create("capacity", {"tokens_per_minute": {"api": 500}}, PluginHandle.simulated(clock))
    api, ctx = backend_view("api"), context(prompt_tokens=100, max_tokens=100)
    for _ in range(2):
        assert policy.filter(ctx, api) is None
        policy.reserve(ctx, api)
    assert "100 left of its tokens-per-minute limit" in policy.filter(ctx, api)
    clock.now += 61
    assert policy.filter(ctx, api) is None


def test_constraints_cover_slots_and_token_limits():
    """A batch gets a Capacity per limited backend and a SideLimit per token-limited backend."""
    policy = create("capacity", {"tokens_per_minute": {"api": 1000}}, PluginHandle())
    batch = [context(prompt_tokens=10, max_tokens=20), context(prompt_tokens=30, max_tokens=40)]
    out = policy.constraints(
        batch, [backend_view("edge", limit=4, in_flight=1), backend_view("api")]
    )
    assert Capacity("edge", 3) in out
    (side,) = [c for c in out if isinstance(c, SideLimit)]
    assert side.limit == 1000 and side.weights == {(0, "api"): 30.0, (1, "api"): 70.0}
