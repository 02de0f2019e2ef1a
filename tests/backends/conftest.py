"""Fixtures of the backend tests: raw HTTP servers for the wire client (tests/fakes)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from tests.fakes.raw_upstream import Handler, RawUpstream


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[RawUpstream]]]:
    """Starts RawUpstreams running a handler on a free port; closes them after the test."""
    servers: list[RawUpstream] = []

    async def start(handler: Handler, **kwargs: Any) -> RawUpstream:
        servers.append(await RawUpstream.start(handler, **kwargs))
        return servers[-1]

    yield start
    for server in servers:
        await server.close()
