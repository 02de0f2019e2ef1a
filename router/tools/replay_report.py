"""Replay results: the metrics of one config, B - A differences, and the text report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class Metrics:
    """What one config did with the trace. Times in ms, money in USD, shares in [0, 1]."""

    config: str
    requests: int
    served: int
    total_cost_usd: float
    cost_per_1k_requests_usd: float  # per 1000 served requests
    ttft_p50_ms: float
    ttft_p95_ms: float
    ttft_p99_ms: float
    slo_requests: int
    slo_met: int
    slo_attainment: float | None  # None: no request had an SLO
    backend_requests: dict[str, int]
    backend_share: dict[str, float]
    privacy_violations: int
    rejected: int
    rejected_by_code: dict[str, int]
    batches: int
    solver_tiers: dict[str, int]
    simulated_s: float
    wall_s: float = field(default=0.0, compare=False)
    # Calibration (router/tools/replay_service.py): the service-time model, and the simulated
    # times' error against the real ones a request log recorded (None: it recorded none).
    service_model: str = "analytic"
    service_fallbacks: int = 0  # jobs the trained model did not judge (the rates were used)
    calibrated_requests: int = 0
    ttft_error_pct: float | None = None
    total_error_pct: float | None = None


def difference(a: Metrics, b: Metrics) -> dict[str, Any]:
    """B - A for every numeric metric (per key for the per-backend and per-code ones)."""
    out: dict[str, Any] = {}
    for f in fields(Metrics):
        va, vb = getattr(a, f.name), getattr(b, f.name)
        if isinstance(va, dict):
            out[f.name] = {k: vb.get(k, 0) - va.get(k, 0) for k in sorted({*va, *vb})}
        elif isinstance(va, int | float) and isinstance(vb, int | float):
            out[f.name] = vb - va
        elif f.name not in ("config", "service_model"):
            out[f.name] = None
    return out


_ROWS: list[tuple[str, str, str]] = [  # label, metric, format
    ("requests", "requests", "d"),
    ("served", "served", "d"),
    ("total cost (USD)", "total_cost_usd", ".6f"),
    ("cost / 1k served (USD)", "cost_per_1k_requests_usd", ".6f"),
    ("TTFT p50 (ms)", "ttft_p50_ms", ".1f"),
    ("TTFT p95 (ms)", "ttft_p95_ms", ".1f"),
    ("TTFT p99 (ms)", "ttft_p99_ms", ".1f"),
    ("requests with an SLO", "slo_requests", "d"),
    ("SLO attainment", "slo_attainment", ".1%"),
    ("privacy violations", "privacy_violations", "d"),
    ("rejected", "rejected", "d"),
    ("TTFT error vs the trace (%)", "ttft_error_pct", ".1f"),
    ("total time error vs the trace (%)", "total_error_pct", ".1f"),
    ("service-model fallbacks", "service_fallbacks", "d"),
]


def format_report(results: Sequence[Metrics]) -> str:
    """An aligned text table: one column per config, plus B - A when there are two."""
    dicts = [asdict(m) for m in results]
    rows = [(label, [d[key] for d in dicts], fmt) for label, key, fmt in _ROWS]
    for group, label, fmt in (
        ("rejected_by_code", "  {}", "d"),
        ("backend_share", "share {}", ".1%"),
        ("solver_tiers", "batches by {}", "d"),
    ):
        for key in sorted({k for d in dicts for k in d[group]}):
            rows.append((label.format(key), [d[group].get(key, 0) for d in dicts], fmt))
    rows += [
        ("simulated time (s)", [m.simulated_s for m in results], ".1f"),
        ("wall time (s)", [m.wall_s for m in results], ".2f"),
    ]
    header = [
        "metric",
        *(
            f"{'AB'[i]}: {m.config}" + (f" ({m.service_model})" * (m.service_model != "analytic"))
            for i, m in enumerate(results)
        ),
    ]
    table = [header + ["B - A"] * (len(results) == 2)]
    for label, values, fmt in rows:
        cells = [label, *("-" if v is None else format(v, fmt) for v in values)]
        if len(values) == 2:
            a, b = values
            cells.append("-" if a is None or b is None else format(b - a, "+" + fmt))
        table.append(cells)
    widths = [max(len(row[c]) for row in table) for c in range(len(table[0]))]
    table.insert(1, ["-" * w for w in widths])
    return "\n".join(
        "  ".join([row[0].ljust(widths[0]), *map(str.rjust, row[1:], widths[1:])]) for row in table
    )
