"""The scrape-time gauges reflect the router's state: health and ejections, in-flight generations,
tokens per minute, budgets of configured tenants, and the config version in use."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from router.runtime.engine import Router
from tests.conftest import loaded
from tests.router.observability.scrape import label_values, value
from tests.router.observability.test_metrics import ask, config


def budget_config() -> dict[str, Any]:
    """`config()` with a capacity policy and budgets: one for tenant acme, one per tenant."""
    data = config()
    data["policies"]["capacity"] = {
        "type": "capacity",
        "parameters": {"tokens_per_minute": {"a": 100_000}},
    }
    data["policies"]["budget"] = {
        "type": "budget",
        "parameters": {
            "budgets": [
                {"tenant": "acme", "limit_usd": 2.0, "window": "1d"},
                {"tenant": "*", "limit_usd": 1.0, "window": "1h"},
            ]
        },
    }
    data["profiles"]["default"]["policies"] += [{"policy": "capacity"}, {"policy": "budget"}]
    return data


@pytest.fixture
async def router():
    router = await Router.create(loaded(budget_config()))
    yield router
    await router.aclose()


async def test_health_gauges_follow_ejection_and_probes(router):
    """A backend ejected after failed requests shows state ejected and one ejection; one failing
    its probes shows unhealthy; the others stay healthy, one state per backend at a time."""
    health = router.health
    assert value(router, "tokenrouter_backend_health", backend="a", state="healthy") == 1
    for _ in range(router.config.health.eject_after):
        health.failure("a", "boom")
    assert value(router, "tokenrouter_backend_health", backend="a", state="ejected") == 1
    assert value(router, "tokenrouter_backend_health", backend="a", state="healthy") == 0
    assert value(router, "tokenrouter_backend_ejections_total", backend="a") == 1
    for _ in range(router.config.health.unhealthy_after):
        health.probe_failed("b", "down")
    assert value(router, "tokenrouter_backend_health", backend="b", state="unhealthy") == 1
    assert value(router, "tokenrouter_backend_health", backend="b") == 1  # one state only
    assert value(router, "tokenrouter_backend_ejections_total", backend="b") == 0


async def test_in_flight_counts_a_running_generation_and_the_token_window_its_tokens(router):
    """While a Generate streams, its backend shows one in flight; after, none, and the
    tokens-per-minute window holds what admission counted."""
    stream = router.generate(ask())
    async with contextlib.aclosing(stream):
        decision = await anext(stream)
        await anext(stream)  # the first token: the generation is running
        assert value(router, "tokenrouter_backend_in_flight", backend=decision.backend) == 1
        rest = [e async for e in stream]
    assert value(router, "tokenrouter_backend_in_flight", backend=decision.backend) == 0
    assert rest[-1].completion_tokens == 5
    window = value(router, "tokenrouter_backend_window_tokens", backend="a")
    assert window == router.handle.token_window.used("a") and window >= 8


async def test_budget_gauges_show_a_configured_tenant_and_not_the_others(router):
    """acme's budget shows its limit, and what it spent moves from 0 to the request's cost;
    a tenant only under the "*" budget gets no series."""
    acme = {"policy": "budget", "tenant": "acme", "window": "1d"}
    assert value(router, "tokenrouter_budget_limit_usd", **acme) == 2.0
    assert value(router, "tokenrouter_budget_spent_usd", **acme) == 0
    usage = [e async for e in router.generate(ask(tenant="acme"))][-1]
    [e async for e in router.generate(ask(tenant="someone-else"))]
    assert usage.cost_usd > 0
    assert value(router, "tokenrouter_budget_spent_usd", **acme) == pytest.approx(usage.cost_usd)
    assert value(router, "tokenrouter_budget_left_usd", **acme) == pytest.approx(
        2.0 - usage.cost_usd
    )
    assert label_values(router, "tenant") == {"acme"}


async def test_the_config_info_follows_a_reload(router):
    """tokenrouter_config_info names the version in use, and only it, before and after a reload;
    the loaded-at timestamp moves on."""
    first = router.loaded.version
    stamp = value(router, "tokenrouter_config_loaded_timestamp_seconds")
    assert value(router, "tokenrouter_config_info", version=first) == 1
    await asyncio.sleep(0.01)
    data = budget_config()
    data["backends"]["b"]["text"] = "changed"
    await router.reload(loaded(data))
    second = router.loaded.version
    assert second != first
    assert label_values(router, "version") == {second}
    assert value(router, "tokenrouter_config_loaded_timestamp_seconds") > stamp


async def test_backend_info_names_tier_type_and_model(router):
    """Each configured backend has one info series with its tier, type and model."""
    info = {"tier": "cloud_gpu", "type": "scripted", "model": "m"}
    assert value(router, "tokenrouter_backend_info", backend="a", **info) == 1
    assert value(router, "tokenrouter_backend_info") == 2
