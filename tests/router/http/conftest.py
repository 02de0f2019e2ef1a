"""Fixtures: a real router serving gRPC and HTTP on free ports, from a config dict."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from router.api.server import RouterServer
from tests.conftest import edge_config, loaded


class RunningHttp:
    """A started RouterServer with its HTTP face on: `base_url` is `http://127.0.0.1:<port>`."""

    def __init__(self, server: RouterServer) -> None:
        assert server.http is not None
        self.server = server
        self.port = server.http.port
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.grpc_target = f"127.0.0.1:{server.port}"


def scripted_config(text: str = "one two three four", **backend: Any) -> dict[str, Any]:
    """A config with one scripted backend `s` (model `m`) and the capability policy."""
    spec = {"type": "scripted", "model": "m", "aliases": ["mm"], "text": text, **backend}
    return {
        "server": {"grace_period_s": 1},
        "backends": {"s": spec},
        "policies": {"capability": {"type": "capability"}},
        "profiles": {"default": {"policies": [{"policy": "capability"}]}},
    }


@pytest.fixture
async def start_http() -> AsyncIterator[Callable[..., Any]]:
    """Starts real servers (gRPC and HTTP on free ports) from config dicts; stops them after."""
    running: list[RunningHttp] = []

    async def start(data: dict[str, Any] | None = None) -> RunningHttp:
        server = await RouterServer.start(
            loaded(data or edge_config()), host="127.0.0.1", port=0, http_port=0
        )
        running.append(RunningHttp(server))
        return running[-1]

    yield start
    for r in running:
        await r.server.stop(grace=0)
