"""http_streaming: Generate through the router vs HTTP straight to a llama.cpp server.

The cloud-GPU stand-in is a real `python -m llama_cpp.server` on SmolLM2 (its own process). The
direct path streams chat completions from it with httpx; the routed path is `tokenrouter serve`
(its own process) with one `openai` backend pointing at the same server, called through the
blocking client library. Runs alternate direct / routed, so noise hits both alike. Added TTFT is
the routed percentile minus the direct one; the decode rate compares medians.
"""

from __future__ import annotations

import json
import time

import httpx

from benchmarks.common import ServerProcess
from benchmarks.edge_streaming import PROMPT, Run, router_once, row
from benchmarks.harness import Check, Section

COLUMNS = ["path", "runs", "tokens", "ttft_p50_ms", "ttft_p99_ms", "decode_tokens_per_s"]


def direct_once(client: httpx.Client, base_url: str, max_tokens: int) -> Run:
    """(TTFT ms, decode tokens/s, tokens) of one streamed completion straight from the server."""
    body = {
        "model": "smollm2",
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "stream": True,
    }
    start = time.perf_counter()
    first, n = 0.0, 0
    with client.stream("POST", f"{base_url}/chat/completions", json=body) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            choices = json.loads(line[6:]).get("choices") or [{}]
            if choices[0].get("delta", {}).get("content"):
                n += 1
                first = first or time.perf_counter()
    end = time.perf_counter()
    return Run((first - start) * 1e3, (n - 1) / (end - first), n)


def run(quick: bool, runs: int | None = None, max_tokens: int = 24) -> Section:
    """Measures `runs` completions each way (50 by default, after warm-ups)."""
    from router.client import RouterClient
    from tests.llamacpp_server import start_llamacpp_server

    runs = runs or (5 if quick else 50)
    direct: list[Run] = []
    routed: list[Run] = []
    with start_llamacpp_server() as llama:
        config = {
            "server": {"watch_config": False},
            "backends": {
                "gpu": {
                    "type": "openai",
                    "base_url": llama.base_url,
                    "model": "smollm2",
                    "context_window": 1024,
                    "metrics": "none",
                    "timeouts": {"first_token_s": 120, "between_tokens_s": 120},
                }
            },
        }
        with (
            ServerProcess.router(config) as server,
            RouterClient(server.target) as client,
            httpx.Client(timeout=120, trust_env=False) as http,
        ):
            for _ in range(2):  # warm both paths and the server's prompt cache
                direct_once(http, llama.base_url, max_tokens)
                router_once(client, max_tokens)
            for _ in range(runs):
                direct.append(direct_once(http, llama.base_url, max_tokens))
                routed.append(router_once(client, max_tokens))
    d, r = row("httpx -> llama.cpp server", direct), row("through tokenrouter", routed)
    ratio = r["decode_tokens_per_s"] / d["decode_tokens_per_s"]
    summary = [
        Check.info("HTTP direct TTFT p50", d["ttft_p50_ms"], "ms"),
        Check.at_most("HTTP added TTFT p50", r["ttft_p50_ms"] - d["ttft_p50_ms"], 3, "ms"),
        Check.info("HTTP added TTFT p99", r["ttft_p99_ms"] - d["ttft_p99_ms"], "ms"),
        Check.at_least("HTTP tokens/s ratio router/direct", ratio, 0.95, "x"),
    ]
    notes = [
        f"{runs} runs each way, alternating, {max_tokens} max tokens, greedy; the llama.cpp "
        "server, the router and this client are separate processes on the same 2 cores."
    ]
    return Section(COLUMNS, [d, r], summary, notes)


if __name__ == "__main__":
    section = run(quick=False)
    for row in section.rows:
        print(row)
    for check in section.summary:
        print(check)
