"""Placement solver decision time per tier, against its target.

Times `router.placement.solver.solve()` (model building included) on seeded random instances:
scores in
[0, 3], about 10% forbidden pairs, slots that bind on some backends, and for the CP-SAT case a
shared dollar budget that binds (30% of what the batch would spend on its dearest backends).
Each case cycles through several instances and reports p50/p99 of the decision time. Usage:

    python -m benchmarks.solver [--quick]
"""

from __future__ import annotations

import argparse
import gc
import math
import random
import time
from collections import Counter
from dataclasses import dataclass

from router.placement import solver

CP_SAT_LIMIT_S = 0.050
INSTANCES = 20  # distinct seeded instances per case, cycled through


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    requests: int
    backends: int
    budget: bool
    reps: int
    quick_reps: int
    metric: str  # "p50" or "p99": what the target bounds
    target_ms: float | None  # None: measured, no target


CASES = (
    Case("single 1x4", 1, 4, False, 2000, 200, "p50", 0.2),
    Case("min-cost flow 32x8", 32, 8, False, 200, 50, "p50", 3.0),
    Case("min-cost flow 128x8", 128, 8, False, 200, 50, "p50", 3.0),
    Case("min-cost flow 512x16", 512, 16, False, 40, 10, "p50", None),
    Case("cp-sat 32x8 + budget", 32, 8, True, 200, 30, "p99", CP_SAT_LIMIT_S * 1e3 + 5),
)


def instance(requests: int, backends: int, budget: bool, seed: int) -> solver.Problem:
    """A seeded random batch; with `budget`, one shared dollar limit that binds."""
    rng = random.Random(seed)
    scores = [
        [None if rng.random() < 0.1 else rng.uniform(0.0, 3.0) for _ in range(backends)]
        for _ in range(requests)
    ]
    tight = max(1, requests // (2 * backends))
    slots = [tight if rng.random() < 0.5 else None for _ in range(backends)]
    side: tuple[solver.SideConstraint, ...] = ()
    if budget:
        usd_per_mtok = [rng.uniform(0.1, 15.0) for _ in range(backends)]
        tokens = [rng.randint(100, 4000) for _ in range(requests)]
        weights = {
            (r, b): tokens[r] * usd_per_mtok[b] / 1e6
            for r in range(requests)
            for b in range(backends)
            if scores[r][b] is not None
        }
        dearest = sum(max(tokens[r] * p for p in usd_per_mtok) / 1e6 for r in range(requests))
        side = (solver.SideConstraint("budget tenant=bench", weights, 0.3 * dearest),)
    return solver.Problem(scores, slots, side)


def percentile(sorted_ms: list[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    return sorted_ms[max(0, math.ceil(q * len(sorted_ms)) - 1)]


def measure(case: Case, quick: bool) -> dict:
    """One benchmark row: decision-time percentiles, tiers seen and whether the target was met."""
    problems = [
        instance(case.requests, case.backends, case.budget, seed) for seed in range(INSTANCES)
    ]
    solver.solve(problems[0], time_limit_s=CP_SAT_LIMIT_S)  # warm up: imports, first allocations
    reps = case.quick_reps if quick else case.reps
    times_ms, tiers, proven = [], Counter(), 0
    gc.collect()
    for i in range(reps):
        problem = problems[i % len(problems)]
        started = time.perf_counter()
        solution = solver.solve(problem, time_limit_s=CP_SAT_LIMIT_S)
        times_ms.append((time.perf_counter() - started) * 1e3)
        tiers[solution.tier] += 1
        proven += solution.optimal
    times_ms.sort()
    p50, p99 = percentile(times_ms, 0.50), percentile(times_ms, 0.99)
    measured = p50 if case.metric == "p50" else p99
    target = None if case.target_ms is None else f"{case.metric} <= {case.target_ms:g} ms"
    return {
        "case": case.name,
        "tiers": ", ".join(f"{t} x{k}" for t, k in tiers.most_common()),
        "reps": reps,
        "optimal_share": proven / reps,
        "p50_ms": p50,
        "p99_ms": p99,
        "target": target,
        "met": None if case.target_ms is None else measured <= case.target_ms,
    }


def run(quick: bool = False) -> list[dict]:
    """Every case, one row each."""
    return [measure(case, quick) for case in CASES]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    rows = run(quick=args.quick)
    print(f"solver decision time (CP-SAT time limit {CP_SAT_LIMIT_S * 1e3:g} ms, 1 worker)")
    header = (
        f"{'case':<22} {'reps':>5} {'p50 ms':>8} {'p99 ms':>8} {'optimal':>8}  {'target':<18} met"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        met = {None: "-", True: "yes", False: "NO"}[row["met"]]
        print(
            f"{row['case']:<22} {row['reps']:>5} {row['p50_ms']:>8.3f} {row['p99_ms']:>8.3f}"
            f" {row['optimal_share']:>8.0%}  {row['target'] or '-':<18} {met:<3}"
            f"   [{row['tiers']}]"
        )


if __name__ == "__main__":
    main()
