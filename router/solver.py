"""Placement solver. Tier 'single': one request with no coupling, exact argmax.

Batch tiers (min-cost flow, CP-SAT) live here too: this is the only module that imports OR-Tools.
"""

from __future__ import annotations

from collections.abc import Sequence

SINGLE = "single"


def argmax(totals: Sequence[float | None]) -> int | None:
    """Index of the best feasible total (None = infeasible); ties go to the lowest index."""
    best, best_total = None, float("-inf")
    for i, total in enumerate(totals):
        if total is not None and total > best_total:
            best, best_total = i, total
    return best
