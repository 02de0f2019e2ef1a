"""Backend health: probes, outlier ejection with Envoy's defaults, and 429 cool-downs."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from router.config import HealthConfig
from router.runtime.resilience import HealthTracker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def tracker(*names: str) -> tuple[HealthTracker, Clock]:
    clock = Clock()
    return HealthTracker(names or ("a", "b"), HealthConfig(), clock), clock


def test_five_consecutive_failures_eject_for_thirty_seconds():
    """The 5th consecutive failure ejects the backend for 30 s; then it is usable again."""
    health, clock = tracker()
    for _ in range(4):
        health.failure("a", "HTTP 500")
    assert health.reason("a") == ""
    health.failure("a", "HTTP 500")
    assert health.reason("a").startswith("ejected for 30 s more after 5 consecutive failures")
    assert health.status("a") == "ejected"
    clock.now += 30.5
    assert health.reason("a") == "" and health.status("a") == "healthy"


def test_ejection_time_grows_with_each_ejection_and_is_capped():
    """Each further ejection lasts 30 s x its count, never more than 300 s."""
    health, clock = tracker()
    durations = []
    for _ in range(12):
        for _ in range(5):
            health.failure("a", "refused")
        start = clock.now
        while health.reason("a"):
            clock.now += 1
        durations.append(clock.now - start)
    assert durations[:3] == [30, 60, 90] and max(durations) == 300


def test_a_success_resets_the_streak_and_forgives_one_ejection():
    """Failures must be consecutive; a success after an ejection lowers the multiplier."""
    health, clock = tracker()
    for _ in range(4):
        health.failure("a", "x")
    health.success("a")
    for _ in range(4):
        health.failure("a", "x")
    assert health.reason("a") == ""
    health.failure("a", "x")
    clock.now += 31
    health.success("a")
    for _ in range(5):
        health.failure("a", "x")
    assert "ejected for 30 s" in health.reason("a")


def test_the_last_usable_backend_is_never_ejected():
    """With every other backend out, failures do not eject the last one."""
    health, _ = tracker("a", "b")
    for _ in range(5):
        health.failure("b", "x")
    for _ in range(10):
        health.failure("a", "x")
    assert health.reason("a") == "" and health.reason("b")


def test_retry_after_cools_the_backend_down():
    """A 429 with Retry-After keeps the backend out for that long."""
    health, clock = tracker()
    health.failure("a", "HTTP 429", retry_after_s=7)
    assert "cooling down 7 s more" in health.reason("a")
    clock.now += 7.1
    assert health.reason("a") == ""


def test_probes_mark_unhealthy_after_three_failures_until_one_succeeds():
    """Three failed probes in a row make a backend unhealthy; one good probe restores it."""
    health, _ = tracker()
    for _ in range(2):
        health.probe_failed("a", "connection refused")
    assert health.status("a") == "healthy"
    health.probe_failed("a", "connection refused")
    assert health.status("a") == "unhealthy" and "connection refused" in health.reason("a")
    health.probe_ok("a")
    assert health.reason("a") == ""


class _Backend:
    """Just what HealthTracker reads from a backend: its config's effective trust."""

    def __init__(self, trust: str) -> None:
        self.config = SimpleNamespace(effective_trust=trust)


def fleet(**trusts: str) -> tuple[HealthTracker, Clock]:
    clock = Clock()
    backends = {name: _Backend(trust) for name, trust in trusts.items()}
    return HealthTracker(backends, HealthConfig(), clock), clock


@pytest.mark.parametrize("retry_after", [math.inf, 1e12, 4.1e9])
def test_a_huge_retry_after_is_capped_at_max_ejection(retry_after):
    """A cool-down never lasts longer than max_ejection_s (300 s), whatever the backend asked."""
    health, clock = tracker()
    health.failure("a", "HTTP 429", retry_after_s=retry_after)
    assert "cooling down 300 s more" in health.reason("a")
    clock.now += 300.1
    assert health.reason("a") == ""


@pytest.mark.parametrize("retry_after", [math.nan, -5.0, -math.inf, 0.0])
def test_a_nonsense_retry_after_is_ignored(retry_after):
    """NaN, negative or zero Retry-After values start no cool-down."""
    health, _ = tracker()
    health.failure("a", "HTTP 429", retry_after_s=retry_after)
    assert health.reason("a") == "" and health.status("a") == "healthy"


def test_the_last_usable_backend_never_cools_down():
    """A one-backend fleet stays usable after a 429 with Retry-After (the failure still counts)."""
    health, _ = tracker("only")
    health.failure("only", "HTTP 429", retry_after_s=30)
    assert health.reason("only") == ""
    health, _ = tracker("a", "b")
    health.failure("b", "HTTP 429", retry_after_s=30)
    health.failure("a", "HTTP 429", retry_after_s=30)
    assert health.reason("a") == "" and "cooling down" in health.reason("b")


def test_the_last_trusted_backend_is_never_ejected_while_third_parties_remain():
    """Failures do not eject the only trusted backend, though third-party ones are usable."""
    health, _ = fleet(edge="edge", api1="third_party", api2="third_party")
    for _ in range(10):
        health.failure("edge", "x")
    assert health.reason("edge") == ""
    for _ in range(5):
        health.failure("api1", "x")
    assert "ejected" in health.reason("api1")


def test_the_last_trusted_backend_never_cools_down_while_third_parties_remain():
    """A Retry-After does not take out the only usable trusted backend; a second one may go."""
    health, _ = fleet(gpu="self_hosted", edge="edge", api="third_party")
    health.failure("gpu", "HTTP 429", retry_after_s=60)
    assert "cooling down" in health.reason("gpu")
    health.failure("edge", "HTTP 429", retry_after_s=60)
    assert health.reason("edge") == ""
    health.failure("api", "HTTP 429", retry_after_s=60)
    assert "cooling down" in health.reason("api")


def test_a_trusted_backend_is_ejected_once_another_trusted_one_is_back():
    """The streak of the protected backend goes on: it is ejected when another one can serve."""
    health, clock = fleet(edge="edge", gpu="self_hosted", api="third_party")
    for _ in range(5):
        health.failure("gpu", "x")
    for _ in range(7):
        health.failure("edge", "x")
    assert health.reason("edge") == "" and health.reason("gpu")
    clock.now += 31
    health.failure("edge", "x")
    assert "ejected" in health.reason("edge") and health.reason("gpu") == ""


def test_the_last_backend_of_a_class_group_is_never_taken_out():
    """With groups (per privacy class, from the privacy rules), the only backend of a group
    stays in while other backends remain; one in no such position is ejected as usual."""
    clock = Clock()
    groups = [{"edge-eu", "gpu-us", "api"}, {"edge-eu"}]  # e.g. RESTRICTED: edge in eu only
    health = HealthTracker(["edge-eu", "gpu-us", "api"], HealthConfig(), clock, groups=groups)
    for _ in range(HealthConfig().eject_after):
        health.failure("edge-eu", "HTTP 500")
        health.failure("gpu-us", "HTTP 500")
    assert health.reason("edge-eu") == ""
    assert "ejected" in health.reason("gpu-us")


def test_the_engine_protects_the_last_backend_the_privacy_policy_allows():
    """Under a privacy policy that keeps RESTRICTED on edge backends in eu, that one backend is
    never ejected, although a self-hosted and a third-party backend remain usable."""
    import asyncio

    import yaml

    from router.config import parse_config
    from router.runtime.engine import Router

    config = {
        "health": {"eject_after": 1},
        "backends": {
            "edge-eu": {"type": "scripted", "model": "m", "tier": "edge", "region": "eu"},
            "gpu-us": {"type": "scripted", "model": "m", "region": "us"},
            "api": {"type": "scripted", "model": "m", "tier": "remote_api", "region": "us"},
        },
        "policies": {
            "privacy": {
                "type": "privacy",
                "parameters": {
                    "trust": {"RESTRICTED": ["edge"]},
                    "regions": {"RESTRICTED": ["eu"]},
                },
            }
        },
        "profiles": {"default": {"policies": [{"policy": "privacy"}]}},
    }

    async def run() -> tuple[str, str]:
        router = await Router.create(parse_config(yaml.safe_dump(config), "<t>"))
        try:
            router.health.failure("edge-eu", "HTTP 500")
            router.health.failure("gpu-us", "HTTP 500")
            return router.health.reason("edge-eu"), router.health.reason("gpu-us")
        finally:
            await router.aclose()

    edge, gpu = asyncio.run(run())
    assert edge == ""
    assert "ejected" in gpu
