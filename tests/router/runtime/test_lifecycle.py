"""Request lifecycle in the router core: reload drains, admission failures, settle-exactly-once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from router.core.types import ChatMessage, Request
from router.placement.pipeline import Step
from router.runtime.engine import Router
from tests.conftest import loaded


def scripted_config(*names: str, budget: bool = False) -> dict[str, Any]:
    config: dict[str, Any] = {
        "health": {"probe_interval_s": 3600},
        "backends": {
            n: {"type": "scripted", "model": "m", "text": "one two three", "token_interval_ms": 20}
            for n in names
        },
        "policies": {"capability": {"type": "capability"}},
        "profiles": {"default": {"policies": [{"policy": "capability"}]}},
    }
    if budget:
        config["policies"]["budget"] = {
            "type": "budget",
            "parameters": {"budgets": [{"tenant": "*", "limit_usd": 100, "window": "1h"}]},
        }
        config["profiles"]["default"]["policies"].append({"policy": "budget"})
        for spec in config["backends"].values():
            spec["price"] = {"input_per_mtok": 1.0, "output_per_mtok": 1.0}
    return config


def make_request(rid: str = "r") -> Request:
    return Request(rid, "t", (ChatMessage("user", "hi"),), 8, 0.0)


async def drain_stream(stream) -> list[Any]:
    return [event async for event in stream]


async def test_a_retired_backend_waits_for_requests_still_placing_on_the_old_version():
    """A backend removed by a reload is not closed while a request that began on the old
    version has yet to be placed (and may land on it); it closes once that request is done."""
    router = await Router.create(loaded(scripted_config("a")))
    old = router.runtime
    gate = asyncio.Event()
    real_context = old.context

    async def gated_context(request: Request):
        await gate.wait()  # the request is between arrival and admission
        return await real_context(request)

    old.context = gated_context  # type: ignore[method-assign]
    events: list[str] = []
    retired = old.backends["a"]
    real_close = retired.aclose

    async def recording_close() -> None:
        events.append("closed")
        await real_close()

    retired.aclose = recording_close  # type: ignore[method-assign]
    task = asyncio.ensure_future(drain_stream(router.generate(make_request())))
    await asyncio.sleep(0.05)
    await router.reload(loaded(scripted_config("b")))
    await asyncio.sleep(0.3)  # the drain has looked several times
    assert events == [] and retired.admitted == 0
    gate.set()
    out = await asyncio.wait_for(task, 5)
    events.append("served")
    assert out[0].backend == "a" and out[-1].completion_tokens == 3
    for _ in range(100):
        if "closed" in events:
            break
        await asyncio.sleep(0.02)
    assert events == ["served", "closed"]
    await router.aclose()


class _Boom:
    name = "boom"

    def reserve(self, ctx, view):
        raise ValueError("plugin bug")


async def test_a_plugin_bug_in_reserve_releases_what_earlier_reservers_held():
    """Runtime.admit gives back the budget hold taken before a reserving plugin crashed."""
    router = await Router.create(loaded(scripted_config("a", budget=True)))
    rt = router.runtime
    budget = rt.pipeline.policies["budget"]
    profile = rt.pipeline.profile_for("")
    ctx = await rt.context(make_request())
    decision, _ = await rt.batcher.place(ctx, admit=False)
    profile.steps = (*profile.steps, Step("boom", _Boom(), 1.0))  # reserves after the budget
    profile._by_kind.clear()
    with pytest.raises(ValueError):
        rt.admit(ctx, decision)
    assert budget.store.held_count() == 0 and rt.backends["a"].admitted == 0
    await router.aclose()


@pytest.mark.parametrize(
    "stop_after",
    ["decision", "first-token", "second-token", "usage", "end"],
)
async def test_every_way_out_settles_or_releases_exactly_once(stop_after):
    """Closing the stream at any point leaves no hold; after the first token the spend is the
    prompt + the tokens produced, before it nothing."""
    router = await Router.create(loaded(scripted_config("a", budget=True)))
    budget = router.runtime.pipeline.policies["budget"]
    settled: list[float] = []
    real_settle = budget.store.settle
    budget.store.settle = lambda hold, amount: (settled.append(amount), real_settle(hold, amount))
    stream = router.generate(make_request())
    seen: list[Any] = []
    stops = {"decision": 1, "first-token": 2, "second-token": 3, "usage": 5, "end": 99}
    async for event in stream:
        seen.append(event)
        if len(seen) == stops[stop_after]:
            break
    await stream.aclose()
    prompt = seen[0].prompt_tokens
    tokens = {"decision": None, "first-token": 1, "second-token": 2, "usage": 3, "end": 3}
    expected = tokens[stop_after]
    assert budget.store.held_count() == 0 and router.runtime.backends["a"].admitted == 0
    if expected is None:
        assert settled == []
    else:
        assert settled == [pytest.approx((prompt + expected) * 1e-6)]
    await router.aclose()
