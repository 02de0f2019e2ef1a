"""routing_quality: replays of the Azure traces through the what-if simulator, vs baselines.

Each trace (../shared/data/traces) is replayed through `router.tools.replay` — the real policy
pipeline and solver in simulated time — on an example fleet: an edge model on CPU, a
self-hosted GPU server and a remote API with public list prices. Privacy classes and SLOs are
assigned by ratio with a fixed seed. The router's default profile (capability, privacy,
capacity, headroom, cost, latency) is compared with baselines computed in the same run, each
keeping the hard filters (capability, privacy, capacity) so that all are feasible:
always-remote-API (prefer the remote tier where allowed), cheapest-feasible (cost only),
round-robin, least-loaded and random. Target: no baseline is both cheaper and better on SLO
attainment than the default profile (it lies on or beyond their Pareto front), with zero
privacy violations.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping
from typing import Any

import yaml

from benchmarks.common import REPO_ROOT
from benchmarks.harness import Check, Section
from router.config import parse_config
from router.core.framework import BackendView, RequestContext
from router.core.registry import default_registry
from router.core.types import Tier
from router.tools.replay import replay
from router.tools.replay_trace import load_traces, parse_privacy_ratios, parse_slo_ratios

TRACES = REPO_ROOT.parent / "shared" / "data" / "traces"
PRIVACY = "PUBLIC=0.5,INTERNAL=0.3,CONFIDENTIAL=0.15,RESTRICTED=0.05"
SLO = "1000:0.5"
HARD = ["capability", "privacy", "capacity"]
COLUMNS = [
    "trace",
    "policy",
    "requests",
    "served",
    "cost_usd",
    "cost_per_1k_usd",
    "slo_attainment",
    "ttft_p99_ms",
    "privacy_violations",
    "rejected",
    "dominated_by",
]

FLEET: dict[str, Any] = {
    "backends": {
        "edge": {
            "type": "scripted",
            "tier": "edge",
            "model": "smollm2",
            "context_window": 2048,
            "max_concurrency": 2,
            "price": {},
            "performance": {"prefill_tokens_per_s": 500, "decode_tokens_per_s": 80},
        },
        "gpu": {
            "type": "scripted",
            "tier": "cloud_gpu",
            "model": "llama-8b",
            "context_window": 32768,
            "max_concurrency": 16,
            "region": "eu",
            "price": {"input_per_mtok": 0.05, "output_per_mtok": 0.10},
            "performance": {"prefill_tokens_per_s": 8000, "decode_tokens_per_s": 60, "rtt_ms": 5},
        },
        "api": {
            "type": "scripted",
            "tier": "remote_api",
            "model": "gpt-4o-mini",
            "context_window": 128000,
            "region": "us",
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
        "headroom": {"type": "headroom"},
        "cost": {"type": "cost"},
        "latency": {"type": "latency"},
        "prefer-remote": {"type": "prefer-remote"},
        "round-robin": {"type": "round-robin"},
        "least-loaded": {"type": "least-loaded"},
        "random": {"type": "random-choice"},
    },
}
PROFILES = {
    "tokenrouter default": [*HARD, "headroom", "cost", "latency"],
    "always remote API": [*HARD, "prefer-remote"],
    "cheapest feasible": [*HARD, "cost"],
    "round-robin": [*HARD, "round-robin"],
    "least-loaded": [*HARD, "least-loaded"],
    "random": [*HARD, "random"],
}


class _PreferRemote:
    def __init__(self, name: str, parameters: Mapping[str, Any]) -> None:
        self.name = name

    def score(self, ctx: RequestContext, backend: BackendView) -> float:
        return 1.0 if backend.tier == Tier.REMOTE_API else 0.0


class _RoundRobin:
    """Scores the next backend in turn highest; the turn advances on every request."""

    def __init__(self, name: str, parameters: Mapping[str, Any]) -> None:
        self.name = name
        self._turn = itertools.count()
        self._current: tuple[str, int] = ("", 0)

    def score(self, ctx: RequestContext, backend: BackendView) -> float:
        if self._current[0] != ctx.request.request_id:
            self._current = (ctx.request.request_id, next(self._turn))
        order = list(FLEET["backends"])
        rank = (order.index(backend.name) - self._current[1]) % len(order)
        return 1.0 - rank / len(order)


class _LeastLoaded:
    def __init__(self, name: str, parameters: Mapping[str, Any]) -> None:
        self.name = name

    def score(self, ctx: RequestContext, backend: BackendView) -> float:
        slots = backend.limit or 64
        return 1.0 - min(1.0, backend.in_flight / slots)


class _Random:
    def __init__(self, name: str, parameters: Mapping[str, Any]) -> None:
        self.name = name
        self._rng = random.Random(7)

    def score(self, ctx: RequestContext, backend: BackendView) -> float:
        return self._rng.random()


def _registry():  # type: ignore[no-untyped-def]
    registry = default_registry()
    registry.register("prefer-remote", _PreferRemote)
    registry.register("round-robin", _RoundRobin)
    registry.register("least-loaded", _LeastLoaded)
    registry.register("random-choice", _Random)
    return registry


def _config(policies: list[str]) -> Any:
    data = dict(FLEET, profiles={"default": {"policies": [{"policy": p} for p in policies]}})
    return parse_config(yaml.safe_dump(data), "<routing-quality fleet>")


def run(quick: bool, limit: int | None = None) -> Section:
    """Every profile on every trace; a row per (trace, profile)."""
    limit = limit or (2000 if quick else None)
    privacy, slo = parse_privacy_ratios(PRIVACY), parse_slo_ratios(SLO)
    rows: list[dict[str, Any]] = []
    summary: list[Check] = []
    for path in sorted(TRACES.glob("*.csv")):
        requests = load_traces([path], limit=limit)
        results = {}
        for label, policies in PROFILES.items():
            m = replay(
                _config(policies), requests, seed=1, privacy=privacy, slo=slo, registry=_registry()
            )
            results[label] = m
            rows.append(
                {
                    "trace": path.stem,
                    "policy": label,
                    "requests": len(requests),
                    "served": len(requests) - m.rejected,
                    "cost_usd": m.total_cost_usd,
                    "cost_per_1k_usd": m.cost_per_1k_requests_usd,
                    "slo_attainment": m.slo_attainment,
                    "ttft_p99_ms": m.ttft_p99_ms,
                    "privacy_violations": m.privacy_violations,
                    "rejected": m.rejected,
                }
            )
        ours = results["tokenrouter default"]
        dominating = [
            label
            for label, m in results.items()
            if label != "tokenrouter default" and _dominates(m, ours)
        ]
        for row in rows[-len(PROFILES) :]:
            row["dominated_by"] = (
                ", ".join(dominating) if row["policy"] == "tokenrouter default" else ""
            )
        summary.append(
            Check.at_most(
                f"{path.stem}: baselines that dominate the default profile", len(dominating), 0
            )
        )
        summary.append(
            Check.at_most(
                f"{path.stem}: privacy violations",
                sum(m.privacy_violations for m in results.values()),
                0,
            )
        )
        summary.append(Check.info(f"{path.stem}: default SLO attainment", ours.slo_attainment))
        summary.append(
            Check.info(f"{path.stem}: default cost per 1k", ours.cost_per_1k_requests_usd, "USD")
        )
    notes = [
        f"privacy mix {PRIVACY}; TTFT SLO {SLO} (ms:share); seed 1; "
        f"{'first ' + str(limit) if limit else 'all'} requests of each trace.",
        "A baseline dominates when it is no worse on cost per 1k served, SLO attainment and "
        "rejections, and strictly better on one.",
    ]
    return Section(COLUMNS, rows, summary, notes)


def _dominates(b: Any, a: Any) -> bool:
    """b is at least as good as a on cost/1k, SLO attainment and rejections, better on one."""
    pairs = [
        (-b.cost_per_1k_requests_usd, -a.cost_per_1k_requests_usd),
        (b.slo_attainment or 0.0, a.slo_attainment or 0.0),
        (-b.rejected, -a.rejected),
    ]
    return all(x >= y for x, y in pairs) and any(x > y for x, y in pairs)


if __name__ == "__main__":
    section = run(quick=True)
    for row in section.rows:
        print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()})
    for check in section.summary:
        print(check)
