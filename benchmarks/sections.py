"""The registered benchmark sections, run in this order by `python -m benchmarks`.

To add one: write `def run(quick: bool) -> Section` in a module of this package (harness.Section:
rows, columns to show, summary Checks with targets) and append a `SectionSpec` here. Sections
must not depend on each other; start servers in their own processes (common.ServerProcess).
"""

from __future__ import annotations

from benchmarks import (
    edge_streaming,
    fleet_budget,
    http_faces,
    http_streaming,
    load,
    predictors,
    relay,
    route_overhead,
    routing_quality,
    shared_state,
    solver_section,
    tool_calls,
    tool_calls_http,
    workers,
)
from benchmarks.harness import SectionSpec

SECTIONS: list[SectionSpec] = [
    SectionSpec(
        "route_overhead",
        "Route latency and throughput of one router process vs a gRPC echo floor",
        route_overhead.run,
    ),
    SectionSpec("solver", "placement solver decision time per tier", solver_section.run),
    SectionSpec(
        "edge_streaming",
        "edge Generate through the router vs llama-cpp-python directly",
        edge_streaming.run,
    ),
    SectionSpec(
        "http_streaming",
        "HTTP Generate through the router vs straight to a llama.cpp server",
        http_streaming.run,
    ),
    SectionSpec(
        "relay",
        "token relay on an upstream that outruns the client vs the bare gRPC streaming floor",
        relay.run,
    ),
    SectionSpec(
        "tool_calls",
        "edge tool call (named tool) through the router vs llama-cpp-python directly",
        tool_calls.run,
    ),
    SectionSpec(
        "tool_calls_http",
        "a complete tool call through the router vs straight to a llama.cpp server",
        tool_calls_http.run,
    ),
    SectionSpec(
        "http_faces",
        "streaming through the OpenAI and Anthropic HTTP faces vs straight to a llama.cpp server",
        http_faces.run,
    ),
    SectionSpec(
        "http_cpu",
        "non-streaming requests: HTTP faces vs gRPC, requests/s and server CPU per request",
        http_faces.run_cpu,
    ),
    SectionSpec("load", "concurrent Generate streams on a scripted backend", load.run),
    SectionSpec(
        "routing_quality",
        "Azure trace replays: the default profile vs baselines",
        routing_quality.run,
    ),
    SectionSpec(
        "shared_state",
        "Route and Generate latency with the Redis stores vs the in-memory ones",
        shared_state.run,
    ),
    SectionSpec(
        "fleet_budget",
        "overspend of one tenant budget shared by three router processes on Redis",
        fleet_budget.run,
    ),
    SectionSpec(
        "workers",
        "Route/s of one machine with serve --workers 2 vs one process",
        workers.run,
    ),
    SectionSpec(
        "predictors",
        "learned TTFT / total-time predictors vs the analytic estimates: error, live A/B, cost",
        predictors.run,
    ),
]
