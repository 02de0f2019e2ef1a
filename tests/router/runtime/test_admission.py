"""Admission (router/runtime/admission.py): reserve in profile order, settle or release exactly
once, release on any failure; the live runtime and the replay both admit through it."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from router.config import parse_config
from router.core.errors import ResourceExhausted
from router.core.types import ChatMessage, Request, Usage
from router.placement.pipeline import Profile, Step
from router.runtime import admission
from router.runtime.engine import Router
from router.tools import replay
from tests.conftest import backend_view, context


class FakeBackend:
    """Only what an admission counts in."""

    admitted = 0


class Hold:
    """A reservation that records what happened to it."""

    def __init__(self, log: list[str], name: str) -> None:
        self.log, self.name = log, name

    def settle(self, usage: Usage) -> None:
        self.log.append(f"settle {self.name} {usage.completion_tokens}")

    def release(self) -> None:
        self.log.append(f"release {self.name}")


class Reserving:
    """A Reserver that holds, holds nothing (`none`), or refuses / crashes (`fail`)."""

    def __init__(
        self, name: str, log: list[str], *, none: bool = False, fail: Exception | None = None
    ):
        self.name, self.log, self.none, self.fail = name, log, none, fail

    def reserve(self, ctx: Any, view: Any) -> Hold | None:
        self.log.append(f"reserve {self.name} on {view.name}")
        if self.fail is not None:
            raise self.fail
        return None if self.none else Hold(self.log, self.name)


def profile(*policies: Reserving) -> Profile:
    return Profile("p", tuple(Step(p.name, p, 1.0) for p in policies))


def test_reserves_in_order_and_settles_each_once():
    """Each reserver holds on the chosen view, in profile order; settle charges every hold once
    and ends the in-flight count; later settles and releases do nothing."""
    log: list[str] = []
    backend = FakeBackend()
    a = admission.admit(
        profile(Reserving("x", log), Reserving("n", log, none=True), Reserving("y", log)),
        context(),
        backend_view("gpu"),
        backend,
    )
    assert backend.admitted == 1
    a.settle(Usage(completion_tokens=3))
    a.settle(Usage(completion_tokens=9))
    a.release()
    assert backend.admitted == 0
    assert log == [
        "reserve x on gpu",
        "reserve n on gpu",
        "reserve y on gpu",
        "settle x 3",
        "settle y 3",
    ]


def test_release_gives_everything_back_once():
    """release() returns every hold and the in-flight count; a later settle charges nothing."""
    log: list[str] = []
    backend = FakeBackend()
    a = admission.admit(profile(Reserving("x", log)), context(), backend_view(), backend)
    a.release()
    a.release()
    a.settle(Usage(completion_tokens=1))
    assert backend.admitted == 0 and log == ["reserve x on b", "release x"]


@pytest.mark.parametrize("fail", [ResourceExhausted("over budget"), ValueError("plugin bug")])
def test_a_failing_reserver_releases_what_earlier_ones_held(fail):
    """A refusal or a plugin bug in a later reserver releases the earlier holds, counts nothing
    in flight and propagates unchanged."""
    log: list[str] = []
    backend = FakeBackend()
    steps = profile(Reserving("x", log), Reserving("boom", log, fail=fail), Reserving("z", log))
    with pytest.raises(type(fail)):
        admission.admit(steps, context(), backend_view(), backend)
    assert backend.admitted == 0
    assert log == ["reserve x on b", "reserve boom on b", "release x"]


CONFIG = {
    "health": {"probe_interval_s": 3600},
    "backends": {"a": {"type": "scripted", "model": "m", "text": "one two"}},
    "policies": {"capability": {"type": "capability"}},
    "profiles": {"default": {"policies": [{"policy": "capability"}]}},
}


async def test_the_live_router_and_the_replay_admit_through_the_same_function(monkeypatch):
    """Runtime.admit and the replay's simulated admission both call
    router.runtime.admission.admit."""
    callers: list[str] = []
    real = admission.admit

    def spy(profile, ctx, view, backend):
        callers.append(type(backend).__name__)
        return real(profile, ctx, view, backend)

    monkeypatch.setattr(admission, "admit", spy)
    loaded = parse_config(yaml.safe_dump(CONFIG), "<test>")
    router = await Router.create(loaded)
    try:
        request = Request("r", "t", (ChatMessage("user", "hi"),), 8, 0.0)
        events = [e async for e in router.generate(request)]
        assert events[-1].completion_tokens == 2 and router.runtime.backends["a"].admitted == 0
    finally:
        await router.aclose()
    metrics = replay.replay(loaded, [replay.TraceRequest(0.0, 10, 5)])
    assert metrics.served == 1
    assert callers == ["ScriptedBackend", "_Backend"]
