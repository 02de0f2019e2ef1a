"""workers: Route/s of one machine with `tokenrouter serve --workers 2` vs one process.

Two servers on the route_overhead config (three scripted backends, the standard policies): a
plain `serve`, and `serve --workers 2` (a supervisor and two workers on one SO_REUSEPORT port,
measured once both workers listen on it). One load-generator process drives each in turn,
closed loop at concurrency 64 over 16 connections (the kernel spreads connections, not calls,
over the workers), the two alternating per round so machine noise hits both alike. The summary
is the median over rounds of the per-round ratio. The load generator runs on the same cores:
on a 2-core machine the ratio is bounded by what the client leaves to the servers.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from typing import Any

from benchmarks.common import ServerProcess, run_loadgen
from benchmarks.harness import Check, Section
from benchmarks.route_overhead import ROUTER_CONFIG

CONCURRENCY = 64
CHANNELS = 16
COLUMNS = ["round", "server", "calls", "calls_per_s", "p50_ms", "p99_ms", "client_cpu_share"]
COLUMNS += ["errors"]


def listeners(port: int) -> int:
    """How many sockets listen on TCP `port` (Linux /proc/net; SO_REUSEPORT gives one per
    worker)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as f:
            for line in f.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                count += state == "0A" and int(local.rsplit(":", 1)[1], 16) == port
    return count


def _all_listen(server: ServerProcess, workers: int, timeout_s: float = 120.0) -> None:
    """Waits until every worker listens on the port (the logs are at warning level)."""
    deadline = time.monotonic() + timeout_s
    while listeners(server.port) < workers:
        if server.proc is None or server.proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{server.name}: not {workers} listeners: {server.log()}")
        time.sleep(0.1)


def _phase(server: ServerProcess, duration_s: float, warmup_s: float) -> dict[str, Any]:
    args = ["route", "--target", server.target, "--concurrency", str(CONCURRENCY)]
    args += ["--channels", str(CHANNELS), "--duration", str(duration_s)]
    args += ["--warmup", str(warmup_s)]
    r = run_loadgen(args, timeout_s=duration_s + warmup_s + 60)
    return {
        "server": server.name,
        "calls": r["count"],
        "calls_per_s": r["rate_per_s"],
        "p50_ms": r["p50_ms"],
        "p99_ms": r["p99_ms"],
        "client_cpu_share": r["client_cpu_s"] / r["window_s"],
        "errors": r["errors"],
        "first_error": r["first_error"],
    }


def run(quick: bool) -> Section:
    duration_s, warmup_s, rounds = (2.0, 0.5, 1) if quick else (5.0, 1.0, 3)
    rows: list[dict[str, Any]] = []
    one = ServerProcess.router(ROUTER_CONFIG, name="1 process")
    two = ServerProcess.router(ROUTER_CONFIG, name="--workers 2")
    two.argv += ["--workers", "2"]
    with one, two:
        _all_listen(two, 2)
        for i in range(1, rounds + 1):
            for server in (one, two):
                rows.append({"round": i, **_phase(server, duration_s, warmup_s)})

    def rate(rs: list[dict[str, Any]], name: str) -> float:
        return statistics.median(r["calls_per_s"] for r in rs if r["server"] == name)

    by_round = [[r for r in rows if r["round"] == i] for i in range(1, rounds + 1)]
    ratio = statistics.median(rate(rs, two.name) / rate(rs, one.name) for rs in by_round)
    errors = sum(r["errors"] for r in rows)
    summary = [
        Check.info("Route/s, 1 process", rate(rows, one.name), "/s"),
        Check.info("Route/s, --workers 2", rate(rows, two.name), "/s"),
        Check.at_least("Route/s ratio --workers 2 / 1", ratio, 1.2, "x"),
        Check.at_most("Route errors", float(errors), 0),
    ]
    notes = [
        f"{rounds} round(s) of {duration_s:g} s per server after {warmup_s:g} s warm-up, "
        f"closed loop at c={CONCURRENCY} over {CHANNELS} connections; the ratio is the median "
        "of the per-round ratios (both servers measured back to back).",
        "The load generator shares the machine's cores with the workers (client_cpu_share: "
        "its CPU-seconds per second); with as many workers as cores the client's share is "
        "taken from them, so the ratio on a 2-core machine stays well below 2.",
    ]
    return Section(COLUMNS, rows, summary, notes=notes, data={"ratio": ratio})
