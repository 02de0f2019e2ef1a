"""predictors: learned TTFT / total-time predictors vs the analytic estimates, on real models.

The fleet: a `tokenrouter serve` process with two backends of different speeds, the in-process
edge SmolLM2 on one thread (`edge`) and a real `python -m llama_cpp.server` on two (`gpu`).
Prompt and output lengths are drawn from the Azure conversation trace, scaled to the small
model (prompt x 1/16, at most 48 words; max_tokens = output x 1/16, 1..16).

1. Observations: requests alternate between the backends (`model` alias), CHUNK at a time at a
   concurrency of 1-8 (workers kept busy), with the request log on; `tokenrouter train` then
   fits on the first 70% in time and reports, on the last 30%, the MAPE of TTFT and total time
   per backend: model vs the analytic estimate the router made at each decision.
2. Live A/B: the same open-loop arrivals (the trace's inter-arrival gaps, scaled to a target
   rate) with a TTFT SLO, placed by the latency policy, through a fresh router without and then
   with the trained predictors: SLO attainment and TTFT p99 (as the router measured them).
3. Prediction cost: `Predictors.predict` for a batch of 64 requests x 2 backends, and for one
   request, in microseconds per candidate (target <= 50 us batched).
"""

from __future__ import annotations

import asyncio
import csv
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc

from benchmarks.common import REPO_ROOT, ServerProcess
from benchmarks.harness import Check, Section

TRACE = REPO_ROOT.parent / "shared" / "data" / "traces"
WORDS = ("time", "person", "year", "way", "day", "thing", "man", "world", "life", "hand")
SLO_MS = 1500
CHUNK = 40  # observations collected at one concurrency
COLUMNS = ["row", "backend", "rows", "model_mape", "analytic_mape"]


def _lengths(n: int, seed: int) -> list[tuple[float, int, int]]:
    """(gap s, prompt words, max_tokens) for `n` requests from the Azure conversation trace."""
    path = TRACE / "azure_llm_2023_conv.csv"
    if not path.exists():  # a clone away from the shared traces: seeded draws of the same shape
        rng = random.Random(seed)
        return [(rng.expovariate(1.0), rng.randint(4, 48), rng.randint(1, 16)) for _ in range(n)]
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    start = random.Random(seed).randrange(0, len(rows) - n - 1)
    out, last = [], None
    for row in rows[start : start + n]:
        clock = row["TIMESTAMP"].split(" ")[1].split(":")
        ts = int(clock[0]) * 3600 + int(clock[1]) * 60 + float(clock[2])
        gap = 0.0 if last is None else max(0.0, ts - last)
        last = ts
        prompt = min(48, max(4, int(row["ContextTokens"]) // 16))
        out.append((gap, prompt, min(16, max(1, int(row["GeneratedTokens"]) // 16))))
    return out


def _message(words: int, max_tokens: int, rng: random.Random, **fields: Any) -> Any:
    from router.api import router_pb2 as pb

    text = " ".join(rng.choice(WORDS) for _ in range(words))
    return pb.GenerateRequest(
        messages=[pb.Message(role="user", content=f"Summarise: {text}")],
        max_tokens=max_tokens,
        **fields,
    )


def _config(gpu_url: str, **extra: Any) -> dict[str, Any]:
    from tests.conftest import SMOLLM2

    timeouts = {"first_token_s": 120.0, "between_tokens_s": 120.0, "total_s": 300.0}
    data: dict[str, Any] = {
        "server": {"watch_config": False},
        # The llama.cpp server answers its probe only between generations: a long queue is
        # not an outage.
        "health": {"probe_timeout_s": 120, "unhealthy_after": 100},
        "backends": {
            "edge": {
                "type": "llamacpp",
                "model": "smollm2",
                "gguf": SMOLLM2,
                "threads": 1,
                "context_window": 1024,
                "seed": 1,
                "aliases": ["edge-only"],
            },
            "gpu": {
                "type": "openai",
                "model": "smollm2",
                "base_url": gpu_url,
                "dialect": "llama_cpp_python",
                "metrics": "none",
                "context_window": 1024,
                "timeouts": timeouts,
                "aliases": ["gpu-only"],
            },
        },
        "policies": {"capability": {"type": "capability"}, "latency": {"type": "latency"}},
        "profiles": {"default": {"policies": [{"policy": "capability"}, {"policy": "latency"}]}},
    }
    data.update(extra)
    return data


async def _collect(target: str, n: int) -> None:
    from router.api import router_pb2_grpc as pb_grpc

    rng = random.Random(11)
    lengths = _lengths(n, 3)
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.TokenRouterStub(channel)

        async def one(i: int) -> None:
            _, words, max_tokens = lengths[i]
            alias = "edge-only" if i % 2 else "gpu-only"
            async for _ in stub.Generate(_message(words, max_tokens, rng, model=alias)):
                pass

        async def worker(queue: asyncio.Queue[int]) -> None:
            while not queue.empty():
                await one(queue.get_nowait())

        for start in range(0, n, CHUNK):  # each chunk at a concurrency of 1-8, kept busy
            queue: asyncio.Queue[int] = asyncio.Queue()
            for i in range(start, min(n, start + CHUNK)):
                queue.put_nowait(i)
            await asyncio.gather(*(worker(queue) for _ in range(rng.randint(1, 8))))


async def _arm(target: str, arrivals: list[tuple[float, int, int]], rate: float) -> list[float]:
    """TTFTs (ms, as the router measured them) of the open-loop arrivals."""
    from router.api import router_pb2_grpc as pb_grpc

    rng = random.Random(5)
    mean_gap = statistics.fmean(g for g, _, _ in arrivals[1:]) or 1.0
    scale = 1.0 / rate / mean_gap
    ttfts: list[float] = []
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.TokenRouterStub(channel)

        async def one(words: int, max_tokens: int) -> None:
            msg = _message(words, max_tokens, rng, latency_slo_ms=SLO_MS)
            async for m in stub.Generate(msg):
                if m.HasField("usage"):
                    ttfts.append(m.usage.ttft_ms)

        tasks, at = [], time.perf_counter()
        for gap, words, max_tokens in arrivals:
            at += gap * scale
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
            tasks.append(asyncio.create_task(one(words, max_tokens)))
        await asyncio.gather(*tasks)
    return ttfts


def _p99(values: list[float]) -> float:
    return sorted(values)[min(len(values) - 1, int(len(values) * 0.99))]


def _cost_us(folder: Path) -> tuple[float, float]:
    """Microseconds per candidate: a batch of 64 requests x 2 backends, and one request."""
    from router.predict.model import Predictors
    from tests.conftest import backend_view, context

    predictors = Predictors.load(folder)
    views = [backend_view("edge"), backend_view("gpu")]
    batch = [context(prompt_tokens=20 + i, max_tokens=8) for i in range(64)]
    out = []
    for requests in (batch, batch[:1]):
        rounds = 2000 // len(requests) + 50
        predictors.predict(requests, views)
        started = time.perf_counter()
        for _ in range(rounds):
            predictors.predict(requests, views)
        out.append((time.perf_counter() - started) / rounds / (len(requests) * 2) * 1e6)
    return out[0], out[1]


def run(quick: bool) -> Section:
    from router.predict.observations import read_logs
    from router.predict.train import train
    from tests.llamacpp_server import start_llamacpp_server

    observations, arrivals, rate = (120, 40, 1.0) if quick else (2000, 240, 1.0)
    with start_llamacpp_server() as gpu, tempfile.TemporaryDirectory() as tmp:
        folder, log = Path(tmp) / "models", Path(tmp) / "requests.jsonl"
        config = _config(gpu.base_url)
        config["server"]["request_log"] = str(log)
        started = time.perf_counter()
        with ServerProcess.router(config, "router-collect") as router:
            asyncio.run(_collect(router.target, observations))
        collect_s = time.perf_counter() - started
        rows = read_logs([log]).rows
        card = train(rows, folder, sources=[str(log)])
        trace = _lengths(arrivals, 9)
        arms = {}
        for name, extra in (("analytic", {}), ("predictor", {"predictors": {"path": str(folder)}})):
            with ServerProcess.router(_config(gpu.base_url, **extra), f"router-{name}") as router:
                arms[name] = asyncio.run(_arm(router.target, trace, rate))
        batched_us, single_us = _cost_us(folder)
    table = []
    for backend, targets in card["held_out"].items():
        for target in ("ttft_ms", "total_ms"):
            e = targets[target]
            table.append(
                {
                    "row": target,
                    "backend": backend,
                    "rows": e["rows"],
                    "model_mape": e["model_mape"],
                    "analytic_mape": e["analytic_mape"],
                }
            )
    attained = {k: sum(t <= SLO_MS for t in v) / len(v) for k, v in arms.items()}
    summary = [Check.info("observations collected", float(len(rows)), "")]
    for row in table:
        label = f"{row['row'].removesuffix('_ms')} MAPE {row['backend']}"
        summary.append(Check.info(f"{label}: model", row["model_mape"], "%"))
        summary.append(Check.info(f"{label}: analytic", row["analytic_mape"], "%"))
    for name in arms:
        summary.append(Check.info(f"A/B {name}: SLO {SLO_MS} ms met", attained[name] * 100, "%"))
        summary.append(Check.info(f"A/B {name}: TTFT p99", _p99(arms[name]), "ms"))
    summary.append(Check.at_most("prediction cost per candidate, batched", batched_us, 50, "us"))
    summary.append(Check.info("prediction cost per candidate, one request", single_us, "us"))
    notes = [
        f"{len(rows)} observations in {collect_s:.0f} s on 2 cores (edge: 1 thread in the "
        "router process; gpu: llama.cpp server, 2 threads, one generation at a time, the rest "
        "queued); "
        f"A/B: {arrivals} arrivals at {rate}/s, TTFT SLO {SLO_MS} ms, latency policy.",
        "MAPE on the latest 30% of the observations in time, by models fit on the first 70%; "
        "analytic = the estimate the router logged at each decision (output = max_tokens).",
    ]
    data = {
        "held_out": card["held_out"],
        "attained": attained,
        "ttft_p99_ms": {k: _p99(v) for k, v in arms.items()},
    }
    return Section(COLUMNS, table, summary, notes=notes, data=data)
