"""Backend health: probes, outlier ejection with Envoy's defaults, and 429 cool-downs."""

from __future__ import annotations

from router.config import HealthConfig
from router.resilience import HealthTracker


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
