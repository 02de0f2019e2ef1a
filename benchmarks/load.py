"""load: many concurrent Generate streams through one router process on a scripted backend.

The router (`tokenrouter serve`, standard policies, log level warning) runs in its own process
with one scripted backend that streams its text as fast as it can (token_interval_ms 0); a
separate load-generator process keeps `streams` Generate calls open at all times (a new one
starts when one ends; the first of each asks for a random length, so streams do not end in
lockstep). Measured: tokens/s delivered to the client, the server's CPU seconds per
1k tokens (from /proc/<pid>/stat over the measured window), errors, TTFT under load, and the
server's resident memory before the load and at its peak (VmHWM).
"""

from __future__ import annotations

from typing import Any

from benchmarks.common import ServerProcess, memory_mib, run_loadgen
from benchmarks.harness import Check, Section

COLUMNS = [
    "streams",
    "tokens_per_stream",
    "tokens",
    "tokens_per_s",
    "streams_per_s",
    "server_cpu_s_per_1k_tokens",
    "server_cpu_share",
    "client_cpu_share",
    "ttft_p50_ms",
    "ttft_p99_ms",
    "server_ttft_p50_ms",
    "server_ttft_p99_ms",
    "errors",
    "rss_before_mib",
    "peak_rss_mib",
]


def config(tokens: int) -> dict[str, Any]:
    """One scripted backend streaming `tokens` words with no delay, and the standard policies."""
    text = " ".join(f"word{i % 50}" for i in range(tokens))
    names = ["capability", "privacy", "capacity", "cost", "latency"]
    return {
        "server": {"grace_period_s": 1, "watch_config": False},
        "limits": {"max_tokens": max(8192, tokens)},
        "backends": {
            "gpu": {
                "type": "scripted",
                "tier": "cloud_gpu",
                "model": "medium",
                "context_window": 32768,
                "text": text,
                "ttft_ms": 0,
                "token_interval_ms": 0,
                "price": {"input_per_mtok": 0.05, "output_per_mtok": 0.10},
            }
        },
        "policies": {n: {"type": n} for n in names},
        "profiles": {"default": {"policies": [{"policy": n} for n in names]}},
    }


def run(
    quick: bool,
    streams: int | None = None,
    tokens: int | None = None,
    duration_s: float | None = None,
    warmup_s: float | None = None,
) -> Section:
    """Measures; keyword arguments override the mode's defaults (tests)."""
    streams = streams or (50 if quick else 200)
    tokens = tokens or (100 if quick else 200)
    duration_s = duration_s or (2.0 if quick else 10.0)
    warmup_s = warmup_s or (0.5 if quick else 2.0)
    with ServerProcess.router(config(tokens), name="router") as server:
        rss_before = memory_mib(server.pid, "VmRSS")
        args = ["generate", "--target", server.target, "--concurrency", str(streams)]
        args += ["--max-tokens", str(tokens), "--duration", str(duration_s)]
        args += ["--warmup", str(warmup_s), "--server-pid", str(server.pid)]
        r = run_loadgen(args, timeout_s=duration_s + warmup_s + 120)
        peak = memory_mib(server.pid, "VmHWM")
    window = r["window_s"]
    cpu_per_1k = r["server_cpu_s"] / r["count"] * 1e3 if r["count"] else float("nan")
    row = {
        "streams": streams,
        "tokens_per_stream": tokens,
        "tokens": r["count"],
        "tokens_per_s": r["count"] / window,
        "streams_per_s": r["streams"] / window,
        "server_cpu_s": r["server_cpu_s"],
        "server_cpu_s_per_1k_tokens": cpu_per_1k,
        "server_cpu_share": r["server_cpu_s"] / window,
        "client_cpu_share": r["client_cpu_s"] / window,
        "ttft_p50_ms": r["p50_ms"],
        "ttft_p99_ms": r["p99_ms"],
        "server_ttft_p50_ms": r["server_ttft_p50_ms"],
        "server_ttft_p99_ms": r["server_ttft_p99_ms"],
        "errors": r["errors"],
        "first_error": r["first_error"],
        "rss_before_mib": rss_before,
        "peak_rss_mib": peak,
    }
    summary = [
        Check.info(f"tokens/s, {streams} streams", row["tokens_per_s"], "/s"),
        Check.info("server CPU per 1k tokens", cpu_per_1k, "s"),
        Check.info(f"router-side TTFT p99 ({streams} streams)", r["server_ttft_p99_ms"], "ms"),
        Check.info(f"client-seen TTFT p99 ({streams} streams)", r["p99_ms"], "ms"),
        Check.at_most("stream errors", float(r["errors"]), 0),
        Check.info("server peak RSS", peak, "MiB"),
    ]
    notes = [
        f"{streams} streams kept open for {duration_s:g} s after {warmup_s:g} s warm-up, "
        f"{tokens} tokens each (one GenerateResponse per token); tokens counted as received.",
        "server_cpu_share near 1.0: the router's event loop is the limit; client_cpu_share near "
        "1.0: the load generator is (both share this machine's cores).",
        "ttft_*: from the client's call to its first text; server_ttft_*: the router's own "
        "figure (Usage.ttft_ms, from the request reaching the engine to the backend's first "
        "token). With the client saturated, tokens queue on the client side (each stream's HTTP/2 "
        "window holds its whole reply), so client-seen TTFT under load is mostly that backlog.",
    ]
    return Section(COLUMNS, [row], summary, notes)
