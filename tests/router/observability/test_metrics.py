"""Metrics move as requests flow through a real Router: counters and histograms before and after,
on scripted backends and, for fallbacks, the scripted OpenAI upstream."""

from __future__ import annotations

from typing import Any

import pytest

from router.core.types import ChatMessage, Request
from router.runtime.engine import Router
from tests.conftest import loaded
from tests.fakes.fake_upstream import FakeUpstream, Script
from tests.router.observability.scrape import value
from tests.router.runtime.test_fallback import fleet

WORDS = "one two three four five"


def config(**backend: Any) -> dict[str, Any]:
    """Two scripted backends, "a" cheaper than "b" (so placement picks "a"), and two profiles."""

    def spec(price: float) -> dict[str, Any]:
        return {
            "type": "scripted",
            "model": "m",
            "text": WORDS,
            "token_interval_ms": 5,
            "price": {"input_per_mtok": price, "output_per_mtok": price},
            **backend,
        }

    steps = [{"policy": "capability"}, {"policy": "cost"}]
    return {
        "health": {"probe_interval_s": 3600},
        "backends": {"a": spec(1.0), "b": spec(9.0)},
        "policies": {
            "capability": {"type": "capability"},
            "cost": {"type": "cost", "parameters": {"reference_usd": 1e-5}},
        },
        "profiles": {"default": {"policies": steps}, "batch": {"policies": steps}},
    }


def ask(rid: str = "r", tenant: str = "t", **fields: Any) -> Request:
    return Request(rid, tenant, (ChatMessage("user", "hi"),), 8, 0.0, **fields)


@pytest.fixture
async def router():
    router = await Router.create(loaded(config()))
    yield router
    await router.aclose()


async def test_a_generate_moves_the_request_counter_and_latency_histograms(router):
    """One Generate adds one OK request on its backend and profile, one TTFT, inter-token and
    duration observation, and its tokens and cost to the backend's counters."""
    labels = {"kind": "generate", "backend": "a", "tier": "cloud_gpu", "profile": "default"}
    before = value(router, "tokenrouter_requests_total", status="OK", **labels)
    ttft_before = value(router, "tokenrouter_time_to_first_token_seconds_count", backend="a")
    events = [e async for e in router.generate(ask())]
    usage = events[-1]
    assert value(router, "tokenrouter_requests_total", status="OK", **labels) == before + 1
    assert value(router, "tokenrouter_time_to_first_token_seconds_count", backend="a") == (
        ttft_before + 1
    )
    assert value(router, "tokenrouter_time_to_first_token_seconds_sum", backend="a") == (
        pytest.approx(usage.ttft_ms / 1e3)
    )
    # 5 tokens 5 ms apart: a mean gap of ~5 ms, in the buckets from 5 ms up, not in 2.5 ms.
    gap = value(router, "tokenrouter_inter_token_seconds_sum", backend="a")
    assert gap == pytest.approx((usage.total_ms - usage.ttft_ms) / 1e3 / 4)
    assert 0.004 < gap < 0.05
    assert value(router, "tokenrouter_inter_token_seconds_bucket", backend="a", le="0.0025") == 0
    assert value(router, "tokenrouter_inter_token_seconds_bucket", backend="a", le="+Inf") == 1
    duration = {"kind": "generate", "backend": "a"}
    assert value(router, "tokenrouter_request_duration_seconds_count", **duration) == 1
    assert value(router, "tokenrouter_request_duration_seconds_sum", **duration) == (
        pytest.approx(usage.total_ms / 1e3)
    )
    assert value(router, "tokenrouter_prompt_tokens_total", backend="a") == usage.prompt_tokens
    assert value(router, "tokenrouter_completion_tokens_total", backend="a") == 5
    assert value(router, "tokenrouter_cost_usd_total", backend="a") == pytest.approx(usage.cost_usd)
    assert value(router, "tokenrouter_completion_tokens_total", backend="b") == 0


async def test_decisions_count_by_solver_with_their_time(router):
    """Route, Generate and each decision of a RouteBatch count once under their solver tier,
    and the decision-time histogram sums their decision_us."""
    decided = [await router.route(ask("r1"))]
    first, *_ = [e async for e in router.generate(ask("r2"))]
    decided.append(first)
    decided += await router.route_batch([ask("r3"), ask("r4")])
    solvers = {d.solver for d in decided}
    total = sum(value(router, "tokenrouter_solver_decisions_total", solver=s) for s in solvers)
    assert total == 4
    seconds = sum(
        value(router, "tokenrouter_decision_duration_seconds_sum", solver=s) for s in solvers
    )
    assert seconds == pytest.approx(sum(d.decision_us for d in decided) / 1e6)
    assert value(router, "tokenrouter_decision_duration_seconds_count") == 4


async def test_a_route_counts_its_profile_and_failures_their_status(router):
    """A Route counts under kind route and its configured profile; a Generate refused for an
    unknown model counts INVALID_ARGUMENT with no backend, and observes no latency."""
    await router.route(ask(profile="batch"))
    assert value(router, "tokenrouter_requests_total", kind="route", profile="batch") == 1
    with pytest.raises(Exception, match="unknown model"):
        [e async for e in router.generate(ask(model="nope"))]
    failed = {"kind": "generate", "backend": "none", "tier": "none", "status": "INVALID_ARGUMENT"}
    assert value(router, "tokenrouter_requests_total", **failed) == 1
    assert value(router, "tokenrouter_request_duration_seconds_count", kind="generate") == 0
    assert value(router, "tokenrouter_time_to_first_token_seconds_count") == 0


async def test_a_fallback_counts_the_backend_that_failed():
    """A primary answering 500 before its first token counts one fallback on it (UNAVAILABLE),
    and the request counts OK on the secondary that served it."""
    primary, secondary = await FakeUpstream.start(), await FakeUpstream.start()
    router = await Router.create(loaded(fleet(primary.base_url, secondary.base_url)))
    try:
        primary.script(Script(mode="status", status=500))
        before = value(router, "tokenrouter_fallbacks_total", backend="primary")
        events = [e async for e in router.generate(ask(tenant="default"))]
        assert events[-1].backend == "secondary"
        after = value(router, "tokenrouter_fallbacks_total", backend="primary", code="UNAVAILABLE")
        assert after == before + 1
        assert value(router, "tokenrouter_fallbacks_total", backend="secondary") == 0
        served = {"backend": "secondary", "status": "OK", "kind": "generate"}
        assert value(router, "tokenrouter_requests_total", **served) == 1
    finally:
        await router.aclose()
        await primary.close()
        await secondary.close()


async def test_each_router_has_its_own_registry():
    """Two routers in one process count separately: one's requests do not show in the other's."""
    first = await Router.create(loaded(config()))
    second = await Router.create(loaded(config()))
    try:
        await first.route(ask())
        assert value(first, "tokenrouter_requests_total", kind="route") == 1
        assert value(second, "tokenrouter_requests_total", kind="route") == 0
        assert first.metrics.registry is not second.metrics.registry
    finally:
        await first.aclose()
        await second.aclose()


async def test_render_gives_the_text_format_and_its_content_type(router):
    """render() answers the Prometheus text exposition with its content type."""
    body, content_type = router.metrics.render()
    assert content_type.startswith("text/plain; version=")
    assert b"# TYPE tokenrouter_requests_total counter" in body
