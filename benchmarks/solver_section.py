"""solver: placement solver decision time per tier (benchmarks/solver.py) as a harness section."""

from __future__ import annotations

from benchmarks import solver
from benchmarks.harness import Check, Section

COLUMNS = ["case", "reps", "p50_ms", "p99_ms", "optimal_share", "tiers", "target", "met"]


def run(quick: bool) -> Section:
    """One row per solver case; each case's target (p50 or p99 bound) is a summary check."""
    rows = solver.run(quick)
    summary = []
    for row in rows:
        case = next(c for c in solver.CASES if c.name == row["case"])
        value = row[f"{case.metric}_ms"]
        figure = f"{row['case']} {case.metric}"
        summary.append(Check(figure, value, "ms", row["target"], row["met"]))
    notes = [f"CP-SAT time limit {solver.CP_SAT_LIMIT_S * 1e3:g} ms, 1 worker; in-process."]
    return Section(COLUMNS, rows, summary, notes)
