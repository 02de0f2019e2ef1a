"""The probe loop (router/runtime/probing.py) against fake backends: outcomes reach the health
tracker."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from router.runtime import probing


class FakeHealth:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def probe_ok(self, name: str) -> None:
        self.events.append((name, "ok"))

    def probe_failed(self, name: str, reason: str) -> None:
        self.events.append((name, reason))


class FakeBackend:
    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour

    async def probe(self) -> None:
        if self.behaviour == "hang":
            await asyncio.sleep(10)
        if self.behaviour == "fail":
            raise ConnectionError("refused")
        if self.behaviour == "bare":
            raise ValueError


def runtime(**backends: str) -> SimpleNamespace:
    health = SimpleNamespace(probe_timeout_s=0.05, probe_interval_s=0.01)
    return SimpleNamespace(
        config=SimpleNamespace(health=health),
        backends={n: FakeBackend(b) for n, b in backends.items()},
        health=FakeHealth(),
    )


async def test_each_backend_is_probed_once_and_its_outcome_recorded():
    """An answer is probe_ok; an error, an error without a message and a timeout are failures
    with a reason; the backends are probed concurrently (one timeout, not several)."""
    rt = runtime(a="ok", b="fail", c="bare", d="hang", e="hang")
    started = asyncio.get_running_loop().time()
    await probing.probe(rt)  # type: ignore[arg-type]
    assert asyncio.get_running_loop().time() - started < 5
    assert sorted(rt.health.events) == [
        ("a", "ok"),
        ("b", "refused"),
        ("c", "ValueError"),
        ("d", "TimeoutError"),
        ("e", "TimeoutError"),
    ]


async def test_the_loop_probes_whichever_version_is_current():
    """probe_forever reads the current version on every round, so a reload's backends are
    probed next."""
    versions = [runtime(old="ok"), runtime(new="ok")]
    current = versions[0]
    task = asyncio.ensure_future(probing.probe_forever(lambda: current))
    for _ in range(200):
        if versions[0].health.events:
            break
        await asyncio.sleep(0.005)
    current = versions[1]
    for _ in range(200):
        if versions[1].health.events:
            break
        await asyncio.sleep(0.005)
    task.cancel()
    assert versions[0].health.events[0] == ("old", "ok")
    assert versions[1].health.events[0] == ("new", "ok")
