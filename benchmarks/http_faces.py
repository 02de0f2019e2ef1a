"""http_faces: the OpenAI and Anthropic HTTP faces vs the llama.cpp server, and vs gRPC.

Streaming: a real `python -m llama_cpp.server` on SmolLM2 (its own process) is called directly
(OpenAI chat completions, streamed, with httpx) and through `tokenrouter serve` (its own
process, one `openai` backend on that server) on both HTTP faces — `POST /v1/chat/completions`
and `POST /v1/messages`, streamed — in rotation, so noise hits all three alike. Added TTFT is a
face's percentile minus the direct one; the decode rate compares medians.

CPU: the router with one scripted backend (no delay, four words) answers non-streaming requests
from a closed-loop load generator in its own process (benchmarks/loadgen.py): through the OpenAI
face, the Anthropic face, and gRPC Generate read to its end. Figures: requests/s and the server's
CPU per request (/proc/<pid>/stat over the measured window).
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from benchmarks.common import ServerProcess, free_port, run_loadgen
from benchmarks.edge_streaming import PROMPT, Run, row
from benchmarks.harness import Check, Section
from benchmarks.http_streaming import direct_once

COLUMNS = ["path", "runs", "tokens", "ttft_p50_ms", "ttft_p99_ms", "decode_tokens_per_s"]
CPU_COLUMNS = ["path", "concurrency", "requests", "requests_per_s", "server_cpu_us_per_request"]
CPU_COLUMNS += ["p50_ms", "errors"]


def _body(max_tokens: int, model: str) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "stream": True,
    }


def _anthropic_once(client: httpx.Client, url: str, max_tokens: int) -> Run:
    """(TTFT ms, decode tokens/s, text deltas) of one Messages stream."""
    start = time.perf_counter()
    first, n = 0.0, 0
    with client.stream("POST", url, json=_body(max_tokens, "auto")) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if line.startswith("data: ") and '"text_delta"' in line:
                n += 1
                first = first or time.perf_counter()
    end = time.perf_counter()
    return Run((first - start) * 1e3, (n - 1) / (end - first), n, 0.0)


def streaming(quick: bool, runs: int | None, max_tokens: int) -> tuple[list[dict], list[Check]]:
    """Rows and checks of the streaming comparison (see the module docstring)."""
    from tests.llamacpp_server import start_llamacpp_server

    runs = runs or (5 if quick else 50)
    direct: list[Run] = []
    chat: list[Run] = []
    messages: list[Run] = []
    with start_llamacpp_server() as llama:
        http_port = free_port()
        backend = {
            "type": "openai",
            "base_url": llama.base_url,
            "model": "smollm2",
            "context_window": 1024,
            "metrics": "none",
            "timeouts": {"first_token_s": 120, "between_tokens_s": 120},
        }
        config = {
            "server": {"watch_config": False, "http_port": http_port},
            "backends": {"gpu": backend},
        }
        base = f"http://127.0.0.1:{http_port}/v1"
        with ServerProcess.router(config), httpx.Client(timeout=120, trust_env=False) as http:
            for i in range(runs + 2):  # two warm-up rounds (the server's prompt cache too)
                d = direct_once(http, llama.base_url, max_tokens)
                c = direct_once(http, base, max_tokens)  # model smollm2: the gpu backend's
                m = _anthropic_once(http, f"{base}/messages", max_tokens)
                if i >= 2:
                    direct.append(d)
                    chat.append(c)
                    messages.append(m)
    rows = [row("httpx -> llama.cpp server", direct), row("OpenAI face", chat)]
    rows.append(row("Anthropic face", messages))
    d = rows[0]
    checks = [Check.info("direct TTFT p50", d["ttft_p50_ms"], "ms")]
    for name, r in (("OpenAI", rows[1]), ("Anthropic", rows[2])):
        checks += [
            Check.at_most(
                f"{name} face added TTFT p50", r["ttft_p50_ms"] - d["ttft_p50_ms"], 3, "ms"
            ),
            Check.info(f"{name} face added TTFT p99", r["ttft_p99_ms"] - d["ttft_p99_ms"], "ms"),
            Check.at_least(
                f"{name} face tokens/s ratio face/direct",
                r["decode_tokens_per_s"] / d["decode_tokens_per_s"],
                0.95,
                "x",
            ),
        ]
    for r in rows:
        r.pop("router_side_ttft_p50_ms", None)
    return rows, checks


def cpu(quick: bool) -> tuple[list[dict], list[Check]]:
    """Rows and checks of the CPU comparison (see the module docstring)."""
    http_port = free_port()
    config = {
        "server": {"grace_period_s": 1, "watch_config": False, "http_port": http_port},
        "backends": {"s": {"type": "scripted", "model": "m", "text": "one two three four"}},
    }
    duration, concurrency = ("2", "4") if quick else ("8", "8")
    rows = []
    with ServerProcess.router(config) as server:
        paths = [("generate", "gRPC Generate"), ("chat", "OpenAI face")]
        for kind, path in [*paths, ("messages", "Anthropic face")]:
            args = [kind, "--target", server.target, "--concurrency", concurrency]
            args += ["--duration", duration, "--warmup", "1", "--max-tokens", "8"]
            args += ["--server-pid", str(server.pid), "--http-port", str(http_port)]
            result = run_loadgen(args, timeout_s=120)
            n = result["streams"]
            rows.append(
                {
                    "path": path,
                    "concurrency": int(concurrency),
                    "requests": n,
                    "requests_per_s": n / result["window_s"],
                    "server_cpu_us_per_request": 1e6 * result["server_cpu_s"] / n if n else None,
                    "p50_ms": result["p50_ms"],
                    "errors": result["errors"],
                }
            )
    grpc_cpu = rows[0]["server_cpu_us_per_request"]
    checks = [Check.info("gRPC server CPU per request", grpc_cpu, "us")]
    for r in rows[1:]:
        checks.append(
            Check.at_most(
                f"{r['path']} CPU per request / gRPC's",
                r["server_cpu_us_per_request"] / grpc_cpu,
                1.5,
                "x",
            )
        )
        checks.append(
            Check.info(
                f"{r['path']} requests/s / gRPC's",
                r["requests_per_s"] / rows[0]["requests_per_s"],
                "x",
            )
        )
    return rows, checks


def run(quick: bool, runs: int | None = None, max_tokens: int = 24) -> Section:
    """Streams `runs` completions per path in rotation (50 by default, 5 with --quick)."""
    rows, checks = streaming(quick, runs, max_tokens)
    notes = [
        f"{rows[0]['runs']} runs per path in rotation, {max_tokens} max tokens, greedy; the "
        "llama.cpp server, the router and this client are separate processes on 2 cores."
    ]
    return Section(COLUMNS, rows, checks, notes)


def run_cpu(quick: bool) -> Section:
    """Non-streaming requests/s and server CPU per request: HTTP faces vs gRPC."""
    rows, checks = cpu(quick)
    notes = [
        "Closed loop, one keep-alive connection (HTTP) or one channel (gRPC) per worker, on a "
        "scripted backend answering four words; the load generator is its own process."
    ]
    return Section(CPU_COLUMNS, rows, checks, notes)


if __name__ == "__main__":
    for section in (run(quick=False), run_cpu(quick=False)):
        for r in section.rows:
            print(r)
        for check in section.summary:
            print(check)
