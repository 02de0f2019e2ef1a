"""relay: what the router adds to every streamed token, against the bare gRPC streaming floor.

Three processes besides the load generator: `benchmarks.sse_upstream` (an OpenAI-compatible
server with no model, so it outruns any client), `tokenrouter serve` with one `openai` backend
on it, and `benchmarks.echo_server`, whose Generate streams a decision, N deltas and a usage with
no routing at all (same proto, same grpcio: the protocol's own cost). Server CPU comes from
/proc/<pid>/stat over the measured window; tokens from each stream's usage.

* outrun: the upstream writes a whole 24-chunk answer at once; the router relays what one read
  brings as one delta, so its CPU per token is the figure (target <= 60 us).
* paced: the upstream sends one chunk every few ms, so every chunk is its own delta; the
  router's CPU per stream is compared with the floor's at the same number of messages
  (target <= 2x).
* bursty: bursts of 8 chunks every 2 ms, 256 tokens a stream; relayed tokens per CPU-second of
  the router (target >= 20,000), and the time to first token under that load.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from benchmarks.common import REPO_ROOT, ServerProcess, free_port, run_loadgen
from benchmarks.harness import Check, Section

COLUMNS = [
    "case",
    "server",
    "streams",
    "tokens_per_stream",
    "messages_per_stream",
    "streams_per_s",
    "server_cpu_ms_per_stream",
    "server_cpu_us_per_token",
    "tokens_per_cpu_s",
    "ttft_p50_ms",
    "server_ttft_p50_ms",
    "errors",
]


@contextlib.contextmanager
def upstream(burst: int = 1 << 20, gap_ms: float = 0.0) -> Iterator[str]:
    """A running sse_upstream; yields its base URL (…/v1)."""
    port = free_port()
    argv = [sys.executable, "-m", "benchmarks.sse_upstream", "--port", str(port)]
    argv += ["--burst", str(burst), "--gap-ms", str(gap_ms)]
    proc = subprocess.Popen(argv, cwd=REPO_ROOT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("sse_upstream did not start") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        proc.wait(10)


def router_config(base_url: str) -> dict[str, Any]:
    """One OpenAI-compatible backend on the upstream; the embedded default policies."""
    return {
        "server": {"grace_period_s": 1, "watch_config": False},
        "limits": {"max_tokens": 8192},
        "backends": {
            "gpu": {
                "type": "openai",
                "base_url": base_url,
                "model": "bench",
                "context_window": 32768,
                "metrics": "none",
                "max_connections": 256,
            }
        },
    }


def measure(
    case: str, server: ServerProcess, streams: int, tokens: int, duration: float
) -> dict[str, Any]:
    """One closed-loop Generate load on `server`; a row of figures."""
    args = ["generate", "--target", server.target, "--concurrency", str(streams)]
    args += ["--max-tokens", str(tokens), "--duration", str(duration), "--warmup", "1"]
    args += ["--server-pid", str(server.pid)]
    r = run_loadgen(args, timeout_s=duration + 120)
    n, toks, cpu = max(r["streams"], 1), max(r["tokens"], 1), r["server_cpu_s"]
    return {
        "case": case,
        "server": server.name,
        "streams": streams,
        "tokens_per_stream": tokens,
        "messages_per_stream": r["count"] / n,  # delta messages (plus a decision and a usage)
        "streams_per_s": r["streams"] / r["window_s"],
        "server_cpu_ms_per_stream": cpu / n * 1e3,
        "server_cpu_us_per_token": cpu / toks * 1e6,
        "tokens_per_cpu_s": toks / cpu if cpu else float("nan"),
        "ttft_p50_ms": r["p50_ms"],
        "server_ttft_p50_ms": r["server_ttft_p50_ms"],
        "errors": r["errors"],
        "first_error": r["first_error"],
    }


def _routed(case: str, streams: int, tokens: int, duration: float, **up: Any) -> dict[str, Any]:
    with upstream(**up) as base_url, ServerProcess.router(router_config(base_url)) as router:
        return measure(case, router, streams, tokens, duration)


def run(quick: bool) -> Section:
    """Measures the three cases, and the floor at the router's message counts."""
    duration = 1.5 if quick else 6.0
    streams = 16 if quick else 64
    outrun = _routed("outrun", streams, 24, duration)
    paced = _routed("paced", 8, 24, duration, burst=1, gap_ms=4.0)
    bursty = _routed("bursty", streams, 256, duration, burst=8, gap_ms=2.0)
    outrun_deltas = max(1, round(outrun["messages_per_stream"]))
    paced_deltas = max(1, round(paced["messages_per_stream"]))
    with ServerProcess.echo() as echo:
        floor = measure("outrun", echo, streams, outrun_deltas, duration)
        floor_24 = measure("outrun", echo, streams, 24, duration)
    with ServerProcess.echo(gap_ms=4.0) as echo:
        floor_paced = measure("paced", echo, 8, paced_deltas, duration)
    cpu = "server_cpu_ms_per_stream"
    ratio = outrun[cpu] / floor[cpu]
    paced_ratio = paced[cpu] / floor_paced[cpu]
    errors = sum(r["errors"] for r in (outrun, paced, bursty))
    summary = [
        Check.at_most("relay CPU per token (outrun)", outrun["server_cpu_us_per_token"], 60, "us"),
        Check.at_most("relay CPU per stream / floor (outrun, equal messages)", ratio, 2, "x"),
        Check.at_most("relay CPU per stream / floor (paced, equal messages)", paced_ratio, 2, "x"),
        Check.info("relay streams/s (outrun, 24 tokens)", outrun["streams_per_s"], "/s"),
        Check.info("floor streams/s (24 deltas)", floor_24["streams_per_s"], "/s"),
        Check.at_least("relayed tokens per CPU-second (bursty)", bursty["tokens_per_cpu_s"], 20000),
        Check.info("router-side TTFT p50 (bursty load)", bursty["server_ttft_p50_ms"], "ms"),
        Check.at_most("relay stream errors", float(errors), 0),
    ]
    notes = [
        f"{duration:g} s measured after 1 s warm-up per case; client, router, upstream and floor "
        "are separate processes on the same 2 cores.",
        "outrun: the whole answer is written at once, so the router's reads bring several "
        "chunks and it relays them as one delta (messages_per_stream: deltas it sent); the floor "
        f"streamed {outrun_deltas} delta(s) per call, plus the decision and the usage.",
        f"paced: 8 streams, one chunk every 4 ms, so each is its own delta; the floor streamed "
        f"{paced_deltas} deltas per call with the same 4 ms pauses.",
        "bursty: 8 chunks every 2 ms, 256 tokens a stream; ttft is client-seen (includes the "
        "client's own backlog under load), server_ttft the router's figure.",
    ]
    rows = [outrun, floor, paced, floor_paced, bursty, floor_24]
    return Section(COLUMNS, rows, summary, notes)


if __name__ == "__main__":
    section = run(quick="--quick" in sys.argv)
    for row in section.rows:
        print(row)
    for check in section.summary:
        print(check)
