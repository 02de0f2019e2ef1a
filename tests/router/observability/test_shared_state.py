"""Shared-state metrics on a router with a real Redis: up and outages follow Redis, admissions
made on local figures during an outage (fail open) and their spend are counted, and the
settles Redis has not acknowledged show until it is back; in-memory state exports none."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import yaml

from router.config import parse_config
from router.core.types import ChatMessage, Request
from router.runtime.engine import Router
from tests.redis_server import start_redis_server
from tests.router.observability.scrape import samples, value

UP = "tokenrouter_shared_state_up"


def config(state: dict[str, Any]) -> str:
    return yaml.safe_dump(
        {
            "state": state,
            "backends": {
                "gpu": {
                    "type": "scripted",
                    "model": "m",
                    "text": "a b",
                    "price": {"output_per_mtok": 1e4},
                }
            },
            "policies": {
                "budget": {
                    "type": "budget",
                    "parameters": {"budgets": [{"tenant": "acme", "limit_usd": 1, "window": "1d"}]},
                }
            },
            "profiles": {"default": {"policies": [{"policy": "budget"}]}},
        }
    )


async def generate(router: Router) -> None:
    async for _ in router.generate(Request("r", "acme", (ChatMessage("user", "hi"),), 4, 0.0)):
        pass


async def until(check, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_outage_metrics_follow_redis_and_count_fail_open_spend() -> None:
    """Redis killed under a fail-open budget: up drops to 0, one outage, the request served on
    local figures counts as unconfirmed with its $0.02 spend, its charge is unsent; Redis back:
    up 1 and nothing left unsent."""
    with start_redis_server(persistent=True) as redis:
        state = {"backend": "redis", "url": redis.url, "prefix": "metrics:", "retry_s": 0.1,
                 "sync_interval_s": 0.1, "on_unavailable": {"budgets": "open"}}  # fmt: skip
        router = await Router.create(parse_config(config(state), "<test>"))
        try:
            await generate(router)
            assert (
                value(router, UP) == 1
                and value(router, "tokenrouter_shared_state_outages_total") == 0
            )
            redis.kill()
            try:
                await generate(router)
                assert value(router, UP) == 0
                assert value(router, "tokenrouter_shared_state_outages_total") == 1
                unconfirmed = "tokenrouter_shared_state_unconfirmed_total"
                assert value(router, unconfirmed, state="budgets") == 1
                assert value(
                    router, "tokenrouter_shared_state_unconfirmed_usd_total"
                ) == pytest.approx(0.02)
                assert value(router, "tokenrouter_shared_state_unsent", state="budgets") >= 1
            finally:
                redis.start()
            unsent = "tokenrouter_shared_state_unsent"
            await until(lambda: value(router, UP) == 1 and value(router, unsent) == 0)
        finally:
            await router.aclose()


async def test_in_memory_state_exports_no_shared_state_samples() -> None:
    """The default in-memory stores: no tokenrouter_shared_state_* sample at all."""
    router = await Router.create(parse_config(config({"backend": "memory"}), "<test>"))
    try:
        assert not [n for n, _ in samples(router) if n.startswith("tokenrouter_shared_state")]
    finally:
        await router.aclose()
