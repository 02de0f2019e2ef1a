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


def gpu_config(base_url: str) -> dict[str, Any]:
    """A config with one cloud-GPU backend `gpu`: a real llama_cpp.server at `base_url`."""
    timeouts = {"first_token_s": 120.0, "between_tokens_s": 120.0, "total_s": 300.0}
    spec = {
        "type": "openai",
        "model": "smollm2",
        "base_url": base_url,
        "dialect": "llama_cpp_python",
        "metrics": "none",
        "context_window": 1024,
        "timeouts": timeouts,
    }
    return {"server": {"grace_period_s": 1}, "backends": {"gpu": spec}}


@pytest.fixture
async def edge_http(start_http) -> RunningHttp:
    """A real router on the real SmolLM2 edge model (seeded), HTTP on a free port."""
    return await start_http(edge_config())


@pytest.fixture
async def gpu_http(start_http, llamacpp_server) -> RunningHttp:
    """A real router whose one backend is a real `python -m llama_cpp.server` on SmolLM2."""
    return await start_http(gpu_config(llamacpp_server.base_url))
