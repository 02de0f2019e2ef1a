"""One config version (router/runtime/context.py): the request context resolves the profile once."""

from __future__ import annotations

import pytest
import yaml

from router.config import parse_config
from router.core.errors import InvalidArgument
from router.core.types import ChatMessage, Request
from router.runtime.engine import Router

CONFIG = {
    "health": {"probe_interval_s": 3600},
    "backends": {
        "a": {"type": "scripted", "model": "m", "text": "one two"},
        "b": {"type": "scripted", "model": "m", "text": "one two"},
    },
    "policies": {
        "capability": {"type": "capability"},
        "cost": {"type": "cost"},
        "budget": {
            "type": "budget",
            "parameters": {"budgets": [{"tenant": "*", "limit_usd": 100, "window": "1h"}]},
        },
    },
    "profiles": {
        "default": {"policies": [{"policy": "capability"}, {"policy": "cost"}]},
        "careful": {"policies": [{"policy": "capability"}, {"policy": "budget"}]},
    },
}


def request(profile: str = "") -> Request:
    return Request("r", "t", (ChatMessage("user", "hi"),), 8, 0.0, profile=profile)


@pytest.fixture
async def router():
    router = await Router.create(parse_config(yaml.safe_dump(CONFIG), "<test>"))
    yield router
    await router.aclose()


@pytest.mark.parametrize("profile", ["", "careful"])
async def test_a_generate_looks_its_profile_up_once(router, monkeypatch, profile):
    """From context to settlement (prepare, evaluate, constraints, decision, admission) a
    Generate resolves its profile by name exactly once and every step uses that one."""
    pipeline = router.runtime.pipeline
    names: list[str] = []
    real = pipeline.profile_for

    def counting(requested: str):
        names.append(requested)
        return real(requested)

    monkeypatch.setattr(pipeline, "profile_for", counting)
    events = [e async for e in router.generate(request(profile))]
    assert names == [profile]
    assert events[0].profile == (profile or "default") and events[-1].completion_tokens == 2


async def test_the_context_carries_the_profile_through_prepare(router):
    """The context the runtime builds holds the resolved profile, and still does after the
    guards' prepare hooks replaced it."""
    ctx = await router.runtime.context(request("careful"))
    assert ctx.profile is router.runtime.pipeline.profiles["careful"]


async def test_an_unknown_profile_is_invalid_argument_naming_profile(router):
    """An unknown profile still fails the context with INVALID_ARGUMENT on `profile`."""
    with pytest.raises(InvalidArgument) as caught:
        await router.runtime.context(request("nope"))
    assert caught.value.field == "profile" and "unknown profile 'nope'" in str(caught.value)


async def test_a_backends_snapshot_follows_its_figures(router):
    """A backend's view is reused while its figures stay the same and rebuilt as soon as its
    in-flight count, observed speeds or health change, so policies never read a stale one."""
    rt = router.runtime
    first = rt.view("a")
    assert rt.view("a") is first
    rt.backends["a"].admitted += 1
    busy = rt.view("a")
    assert busy.in_flight == first.in_flight + 1
    rt.stats["a"].observe(10, 50.0, 5, 0.1, 120.0)
    observed = rt.view("a")
    assert observed.observed_ttft_ms == 50.0 and observed.in_flight == busy.in_flight
    rt.health.failure("a", "boom", retry_after_s=30)
    assert rt.view("a").health_reason.startswith("cooling down")
    rt.backends["a"].admitted -= 1
