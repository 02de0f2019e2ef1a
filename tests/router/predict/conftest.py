"""A real request log from real llama.cpp models, and predictors trained on it, shared by the
predictor tests: an edge SmolLM2 in-process and a `python -m llama_cpp.server` on it, driven at
concurrency 1-4 with varied prompt and output lengths."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import grpc
import pytest

from router.api import router_pb2 as pb
from router.api import router_pb2_grpc as pb_grpc
from router.api.server import RouterServer
from router.predict.observations import read_logs
from router.predict.train import train
from tests.conftest import edge_config, gpu_config, loaded

REQUESTS = 48
WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "a",
    "lazy",
    "dog",
    "while",
    "seven",
    "tired",
    "owls",
    "watch",
]


def fleet_config(gpu_url: str, **extra: Any) -> dict[str, Any]:
    """The edge backend (alias `edge`) and the llama.cpp server (alias `gpu`): a request's
    `model` picks one."""
    data = edge_config(aliases=["edge"])
    gpu = gpu_config(gpu_url)["backends"]["gpu"]
    data["backends"]["gpu"] = {**gpu, "aliases": ["gpu"]}
    data.update(extra)
    return data


async def _drive(data: dict[str, Any]) -> None:
    server = await RouterServer.start(loaded(data), host="127.0.0.1", port=0)
    rng = random.Random(7)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = pb_grpc.TokenRouterStub(channel)

            async def one(i: int) -> None:
                words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 120)))
                msg = pb.GenerateRequest(
                    messages=[pb.Message(role="user", content=f"Repeat: {words}")],
                    max_tokens=rng.randint(2, 14),
                    model="edge" if i % 2 else "gpu",
                )
                async for _ in stub.Generate(msg):
                    pass

            done = 0
            while done < REQUESTS:
                width = min(rng.randint(1, 4), REQUESTS - done)
                await asyncio.gather(*(one(done + k) for k in range(width)))
                done += width
    finally:
        await server.stop(grace=5)


@pytest.fixture(scope="package")
def request_log(llamacpp_server, tmp_path_factory) -> Path:
    """A request log of REQUESTS real generations over both backends."""
    path = tmp_path_factory.mktemp("predict") / "requests.jsonl"
    data = fleet_config(llamacpp_server.base_url)
    data["server"]["request_log"] = str(path)
    asyncio.run(_drive(data))
    return path


@pytest.fixture(scope="package")
def trained(request_log, tmp_path_factory) -> tuple[Path, list[dict[str, Any]]]:
    """Predictors trained on `request_log` (its folder), and the rows they were fit on."""
    rows = read_logs([request_log]).rows
    out = tmp_path_factory.mktemp("models")
    train(rows, out, sources=[str(request_log)])
    return out, rows
