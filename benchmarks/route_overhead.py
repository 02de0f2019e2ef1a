"""route_overhead: unary Route latency and throughput of one router process vs a gRPC echo floor.

Two servers run side by side, each in its own process: `tokenrouter serve` on three scripted
backends (edge, cloud GPU, remote API, with prices) and the standard policies (capability,
privacy, capacity, cost, latency), and `benchmarks.echo_server` (same grpcio, same messages, an
empty RouteDecision). A separate load-generator process (grpc.aio) drives each in turn, echo and
router alternating so machine noise hits both alike: closed loop at concurrency 1 and 64, then 64
clients paced at half the router's measured maximum (tail latency below saturation). Full runs
repeat this `rounds` times; the summary takes the median over rounds.
"""

from __future__ import annotations

import operator
import statistics
from collections.abc import Callable
from typing import Any

from benchmarks.common import ServerProcess, run_loadgen
from benchmarks.harness import Check, Section

HIGH = 64

ROUTER_CONFIG: dict[str, Any] = {
    "server": {"grace_period_s": 1, "watch_config": False},
    "backends": {
        "edge": {
            "type": "scripted",
            "tier": "edge",
            "model": "small",
            "context_window": 8192,
            "performance": {"prefill_tokens_per_s": 500, "decode_tokens_per_s": 80},
        },
        "gpu": {
            "type": "scripted",
            "tier": "cloud_gpu",
            "model": "medium",
            "context_window": 32768,
            "max_concurrency": 256,
            "price": {"input_per_mtok": 0.05, "output_per_mtok": 0.10},
            "performance": {"prefill_tokens_per_s": 8000, "decode_tokens_per_s": 90, "rtt_ms": 5},
        },
        "api": {
            "type": "scripted",
            "tier": "remote_api",
            "model": "large",
            "context_window": 128000,
            "price": {"input_per_mtok": 0.15, "output_per_mtok": 0.60},
            "performance": {
                "prefill_tokens_per_s": 20000,
                "decode_tokens_per_s": 80,
                "rtt_ms": 150,
            },
        },
    },
    "policies": {
        "capability": {"type": "capability"},
        "privacy": {"type": "privacy"},
        "capacity": {"type": "capacity"},
        "cost": {"type": "cost", "parameters": {"reference_usd": 0.001}},
        "latency": {"type": "latency", "parameters": {"reference_ms": 500}},
    },
    "profiles": {
        "default": {
            "policies": [
                {"policy": "capability"},
                {"policy": "privacy"},
                {"policy": "capacity"},
                {"policy": "cost", "weight": 1.0},
                {"policy": "latency", "weight": 1.0},
            ]
        }
    },
}

COLUMNS = [
    "round",
    "server",
    "load",
    "calls",
    "calls_per_s",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "server_cpu_us_per_call",
    "server_cpu_share",
    "client_cpu_share",
    "mean_batch_size",
    "solvers",
    "errors",
]


def _phase(
    server: ServerProcess, concurrency: int, duration_s: float, warmup_s: float, rate: float = 0
) -> dict[str, Any]:
    args = ["route", "--target", server.target, "--concurrency", str(concurrency)]
    args += ["--duration", str(duration_s), "--warmup", str(warmup_s)]
    args += ["--server-pid", str(server.pid)]
    if rate:
        args += ["--rate", f"{rate:.1f}"]
    r = run_loadgen(args, timeout_s=duration_s + warmup_s + 60)
    cpu = r["server_cpu_s"]
    return {
        "server": server.name,
        "load": f"c={concurrency}",
        "concurrency": concurrency,
        "paced_rate": rate or None,
        "calls": r["count"],
        "calls_per_s": r["rate_per_s"],
        "p50_ms": r["p50_ms"],
        "p90_ms": r["p90_ms"],
        "p99_ms": r["p99_ms"],
        "mean_ms": r["mean_ms"],
        "server_cpu_s": cpu,
        "server_cpu_us_per_call": cpu / r["count"] * 1e6 if r["count"] else float("nan"),
        "server_cpu_share": cpu / r["window_s"],
        "client_cpu_share": r["client_cpu_s"] / r["window_s"],
        "errors": r["errors"],
        "first_error": r["first_error"],
        "mean_batch_size": r["mean_batch_size"],
        "solvers": ", ".join(f"{k or '-'} x{v}" for k, v in sorted(r["solvers"].items())),
    }


def _median(rows: list[dict[str, Any]], server: str, load: str, key: str) -> float:
    values = [r[key] for r in rows if r["server"] == server and r["load"] == load]
    return statistics.median(values) if values else float("nan")


def run(
    quick: bool,
    duration_s: float | None = None,
    warmup_s: float | None = None,
    rounds: int | None = None,
) -> Section:
    """Measures; `duration_s`, `warmup_s` and `rounds` override the mode's defaults (tests)."""
    duration_s = duration_s or (2.0 if quick else 5.0)
    warmup_s = warmup_s or (0.5 if quick else 1.0)
    rounds = rounds or (1 if quick else 3)
    rows: list[dict[str, Any]] = []
    with ServerProcess.echo() as echo, ServerProcess.router(ROUTER_CONFIG) as router:
        for i in range(1, rounds + 1):
            for concurrency in (1, HIGH):
                for server in (echo, router):
                    rows.append({"round": i, **_phase(server, concurrency, duration_s, warmup_s)})
            # Tail latency below saturation: 64 clients at half the router's maximum rate.
            rate = max(1.0, rows[-1]["calls_per_s"] / 2)
            for server in (echo, router):
                paced = _phase(server, HIGH, duration_s, warmup_s, rate)
                rows.append({"round": i, **paced, "load": f"c={HIGH} @ 50% of max"})

    def med(server: str, load: str, key: str) -> float:
        return _median(rows, server, load, key)

    c1, c64, paced = "c=1", f"c={HIGH}", f"c={HIGH} @ 50% of max"
    by_round = [[r for r in rows if r["round"] == i] for i in range(1, rounds + 1)]

    def per_round(load: str, key: str, combine: Callable[[float, float], float]) -> float:
        """The median over rounds of combine(router, echo): each round measured both back to
        back, so machine noise hits both alike."""
        return statistics.median(
            combine(_median(rs, "router", load, key), _median(rs, "echo", load, key))
            for rs in by_round
        )

    ratio = per_round(c1, "p50_ms", operator.truediv)
    rate_ratio = per_round(c64, "calls_per_s", operator.truediv)
    cpu_over_echo = per_round(c64, "server_cpu_us_per_call", operator.sub)
    route_cpu, echo_cpu = (med(s, c64, "server_cpu_us_per_call") for s in ("router", "echo"))
    errors = sum(r["errors"] for r in rows)
    summary = [
        Check.info("echo p50 c=1", med("echo", c1, "p50_ms"), "ms"),
        Check.info("echo p99 c=1", med("echo", c1, "p99_ms"), "ms"),
        Check.info(f"echo p50 c={HIGH}", med("echo", c64, "p50_ms"), "ms"),
        Check.info(f"echo p99 c={HIGH}", med("echo", c64, "p99_ms"), "ms"),
        Check.info("Route p50 c=1", med("router", c1, "p50_ms"), "ms"),
        Check.info("Route p99 c=1", med("router", c1, "p99_ms"), "ms"),
        Check.info(f"Route p50 c={HIGH}", med("router", c64, "p50_ms"), "ms"),
        Check.at_most(f"Route p99 c={HIGH} (closed loop)", med("router", c64, "p99_ms"), 5, "ms"),
        Check.at_most(f"Route p99 c={HIGH} @ 50% load", med("router", paced, "p99_ms"), 5, "ms"),
        Check.at_most("Route/echo p50 ratio c=1", ratio, 1.35, "x"),
        Check.at_least("max Route/s (1 process)", med("router", c64, "calls_per_s"), 2000, "/s"),
        Check.info("max echo/s", med("echo", c64, "calls_per_s"), "/s"),
        Check.at_least(f"Route/echo calls/s ratio c={HIGH}", rate_ratio, 0.7, "x"),
        Check.info("server CPU per Route", route_cpu, "us"),
        Check.info("server CPU per echo", echo_cpu, "us"),
        Check.at_most(f"server CPU per Route over echo c={HIGH}", cpu_over_echo, 150, "us"),
        Check.at_most("Route errors", float(errors), 0),
    ]
    notes = [
        f"{rounds} round(s) of {duration_s:g} s per phase after {warmup_s:g} s warm-up; summary: "
        "median over rounds (the ratios and the CPU over echo: medians of the per-round "
        "figures). Closed loop: each client sends its next call when the last returns.",
        f"Closed loop at c={HIGH}, latency ~= {HIGH} / throughput (Little's law): p99 <= 5 ms "
        f"there needs ~{HIGH / 0.005:,.0f} calls/s. The paced phase ({HIGH} clients at half the "
        "router's maximum, same rate for echo) shows the tail below saturation.",
        "server_cpu_share / client_cpu_share: CPU-seconds per second of each process (1.0 = one "
        "core); a client near 1.0 means the load generator, not the server, set the maximum.",
        f"server CPU per call: {route_cpu:,.0f} us Route vs {echo_cpu:,.0f} us echo at c={HIGH} "
        f"-> about {1e6 / route_cpu:,.0f} Route/s per fully used core.",
    ]
    return Section(COLUMNS, rows, summary, notes, {"router_config": ROUTER_CONFIG})
