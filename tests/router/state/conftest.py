"""A real redis-server for the shared-state tests, and links to it as routers would have."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from router.config.sections import StateConfig
from router.state.link import StateLink
from tests.redis_server import RedisServer, start_redis_server


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server on a free loopback port for this module (persistent: a test may
    kill and restart it without losing data)."""
    with start_redis_server(persistent=True) as server:
        yield server


@pytest.fixture
async def links(redis_server, request) -> AsyncIterator[Callable[..., StateLink]]:
    """Makes StateLinks (each its own client, like separate routers) on a fresh prefix."""
    made: list[StateLink] = []
    prefix = f"test:{request.node.name}:"

    def make(**fields: Any) -> StateLink:
        fields.setdefault("retry_s", 0.2)
        config = StateConfig(backend="redis", url=redis_server.url, prefix=prefix, **fields)
        link = StateLink(config)
        made.append(link)
        return link

    yield make
    for link in made:
        await link.aclose(timeout_s=0.5)
