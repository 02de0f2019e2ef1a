"""Placement solver: puts a batch of scored requests on backends.

The objective is lexicographic: first place as many requests as possible, then maximise the total
score of the placed (request, backend) pairs. Hard constraints are never violated: forbidden pairs
(score None), per-backend slots, and side constraints (linear budgets such as dollars per tenant or
tokens per minute per backend).

`solve()` uses the cheapest exact tier that fits:

1. Side constraints that cannot bind (every request on its heaviest backend still fits) are dropped.
2. ``single``: at most one request and no side constraint left -> exact argmax, no OR-Tools.
3. ``min-cost-flow``: no side constraint left -> an assignment problem, solved exactly by OR-Tools'
   SimpleMinCostFlow (source -> request -> backend -> sink, plus a costly "unplaced" route per
   request so that placing one more request always beats any score difference).
4. ``cp-sat``: side constraints bind -> a CP-SAT model (one worker, so deterministic unless the time
   limit cuts it short) hinted with the greedy answer; ``optimal`` says whether it was proven.
5. ``greedy``: CP-SAT found no solution in time -> the greedy answer, which is always feasible.

Scores must be finite. For the integer solvers they are divided by the batch's largest magnitude
and scaled to integers (1e-5 of that magnitude), so any scores, huge or tiny, give the placement
their ratios give; the scale shrinks further only where int64 costs (min-cost flow multiplies them
by the node count) or CP-SAT's objective sum could otherwise overflow, which takes batches of
thousands of requests. Ties break toward the lower backend index. Side-constraint amounts are
scaled to micro-units, weights rounded up and limits down (after snapping values within 1e-9 of
an integer), so the integer model is never looser than the float one. This is the only module
that imports OR-Tools, and it does so lazily.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray
    from ortools.sat.python import cp_model

SINGLE = "single"
MIN_COST_FLOW = "min-cost-flow"
CP_SAT = "cp-sat"
GREEDY = "greedy"

_SCORE_UNITS = 100_000  # the batch's largest |score| -> this many units (1e-5 resolution)
_INT_LIMIT = 2**62  # what any integer cost, times the node count, or objective sum stays under
_AMOUNT_RESOLUTION = 1_000_000  # a side constraint's largest number -> at least 1e6 units
_READ_BACK_S = 0.002  # time kept back from CP-SAT's limit to read its answer
_SNAP = 1e-9  # relative distance to an integer under which a scaled amount is that integer

Pair = tuple[int, int]


@dataclass(frozen=True, slots=True)
class SideConstraint:
    """A linear limit across the batch: the weights of the chosen pairs sum to at most `limit`."""

    name: str
    weights: Mapping[tuple[int, int], float]
    limit: float

    def __post_init__(self) -> None:
        if self.limit < 0 or any(w < 0 for w in self.weights.values()):
            raise ValueError(f"side constraint {self.name!r}: weights and limit must be >= 0")


@dataclass(frozen=True, slots=True)
class Problem:
    """Scores per (request, backend) pair (None = forbidden), slots per backend, side limits.

    Scores are any finite numbers; NaN or infinity raises ValueError."""

    scores: Sequence[Sequence[float | None]]
    slots: Sequence[int | None]
    side: Sequence[SideConstraint] = ()

    def __post_init__(self) -> None:
        n, width = len(self.scores), len(self.slots)
        isfinite = math.isfinite
        for row in self.scores:  # plain loops: this runs for every placement
            if len(row) != width:
                raise ValueError(f"every score row needs {width} entries, one per backend")
        for r, row in enumerate(self.scores):
            for s in row:
                if s is not None and not isfinite(s):
                    raise ValueError(f"request {r} has score {s}: scores must be finite or None")
        for s in self.slots:
            if s is not None and s < 0:
                raise ValueError("slots must be None (unlimited) or >= 0")
        for c in self.side:
            if any(not (0 <= r < n and 0 <= b < width) for r, b in c.weights):
                raise ValueError(f"side constraint {c.name!r} names a pair outside the problem")


@dataclass(frozen=True, slots=True)
class Solution:
    """Backend per request (None = not placed), the tier that decided, and its total score."""

    assignment: tuple[int | None, ...]
    tier: str
    objective: float
    optimal: bool


def argmax(totals: Sequence[float | None]) -> int | None:
    """Index of the best feasible total (None = infeasible); ties go to the lowest index."""
    best, best_total = None, float("-inf")
    for i, total in enumerate(totals):
        if total is not None and total > best_total:
            best, best_total = i, total
    return best


def solve(problem: Problem, *, time_limit_s: float = 0.05) -> Solution:
    """Places the batch with the cheapest exact tier that fits (see the module docstring)."""
    kept = tuple(c for c in problem.side if _can_bind(problem, c))
    if len(kept) != len(problem.side):
        problem = replace(problem, side=kept)
    if not kept:
        solution = independent(problem)
        return solution if solution is not None else solve_min_cost_flow(problem)
    return solve_cp_sat(problem, time_limit_s=time_limit_s)


def independent(problem: Problem) -> Solution | None:
    """Tier 'single': every request on its own best backend, when nothing couples them.

    That is optimal when no side constraint can bind and the picks fit every backend's slots;
    otherwise returns None. Cheap (no OR-Tools), so callers may run it on the event loop.
    """
    if problem.side and any(_can_bind(problem, c) for c in problem.side):
        return None
    picks: list[int | None] = []
    used: dict[int, int] = {}
    total = 0.0
    full = [b for b, slots in enumerate(problem.slots) if slots == 0]
    for row in problem.scores:
        if full:
            row = [None if b in full else s for b, s in enumerate(row)]
        best = argmax(row)
        picks.append(best)
        if best is not None:
            used[best] = used.get(best, 0) + 1
            total += float(row[best])  # type: ignore[arg-type]
    for b, n in used.items():
        limit = problem.slots[b]
        if limit is not None and n > limit:
            return None
    return Solution(tuple(picks), SINGLE, total, True)


def greedy(problem: Problem) -> tuple[int | None, ...]:
    """A feasible assignment: requests by best score (then index), each to its best backend that
    still has a slot and keeps every side constraint satisfied."""
    return _greedy(problem, [_scaled(c) for c in problem.side])


def solve_min_cost_flow(problem: Problem) -> Solution:
    """Exact placement without side constraints, as a min-cost flow; raises ValueError with any."""
    if problem.side:
        raise ValueError("min-cost flow cannot express side constraints; use solve_cp_sat")
    import numpy as np
    from ortools.graph.python import min_cost_flow

    n = len(problem.scores)
    reqs, backs, values, bonus = _pair_values(problem)
    flow = min_cost_flow.SimpleMinCostFlow()
    flow.add_arcs_with_capacity_and_unit_cost(*_flow_arcs(problem, reqs, backs, values, bonus))
    flow.set_node_supply(0, n)
    flow.set_node_supply(n + len(problem.slots) + 1, -n)
    status = flow.solve()
    if status != flow.OPTIMAL:
        raise RuntimeError(f"min-cost flow failed with status {status}")
    placed = flow.flows(np.arange(2 * n, 2 * n + len(values), dtype=np.int32)) > 0
    assignment: list[int | None] = [None] * n
    for r, b in zip(reqs[placed].tolist(), backs[placed].tolist(), strict=True):
        assignment[r] = b
    return _solution(problem, assignment, MIN_COST_FLOW, optimal=True)


def solve_cp_sat(problem: Problem, *, time_limit_s: float = 0.05) -> Solution:
    """Placement with side constraints by CP-SAT; greedy if it finds nothing in time.

    `time_limit_s` bounds the whole call: building the model counts against it."""
    from ortools.sat.python import cp_model

    started = time.perf_counter()
    reqs, backs, values, bonus = _pair_values(problem)
    side = [_scaled(c) for c in problem.side]
    hint = _greedy(problem, side)
    model = cp_model.CpModel()
    pairs = zip(reqs.tolist(), backs.tolist(), strict=True)
    x = {(r, b): model.new_bool_var(f"x{r}_{b}") for r, b in pairs}
    _add_slot_limits(model, problem, x)
    for weights, limit in side:
        terms = [(x[p], w) for p, w in weights.items() if w and p in x]
        if terms:
            variables, coefficients = zip(*terms, strict=True)
            model.add(cp_model.LinearExpr.weighted_sum(variables, coefficients) <= limit)
    objective = (values + bonus).tolist()
    model.maximize(cp_model.LinearExpr.weighted_sum(list(x.values()), objective))
    for (r, b), var in x.items():
        model.add_hint(var, hint[r] == b)
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.linearization_level = 2  # the full LP proves budget batches far sooner
    # What is left of the limit, less a margin for reading the answer back.
    left = time_limit_s - (time.perf_counter() - started) - _READ_BACK_S
    solver.parameters.max_time_in_seconds = max(0.0, left)
    status = solver.solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return _solution(problem, hint, GREEDY, optimal=False)
    assignment: list[int | None] = [None] * len(problem.scores)
    for (r, b), var in x.items():
        if solver.boolean_value(var):
            assignment[r] = b
    return _solution(problem, assignment, CP_SAT, optimal=status == cp_model.OPTIMAL)


def _greedy(
    problem: Problem, side: Sequence[tuple[dict[Pair, int], int]]
) -> tuple[int | None, ...]:
    """`greedy()` with the side constraints already scaled to integers."""
    used = [0] * len(side)
    left = [len(problem.scores) if s is None else s for s in problem.slots]
    best = [max((s for s in row if s is not None), default=None) for row in problem.scores]
    order = sorted((r for r, s in enumerate(best) if s is not None), key=lambda r: (-best[r], r))
    assignment: list[int | None] = [None] * len(problem.scores)
    for r in order:
        row = problem.scores[r]
        allowed = sorted(
            (b for b, s in enumerate(row) if s is not None), key=lambda b: (-row[b], b)
        )
        for b in allowed:
            need = [weights.get((r, b), 0) for weights, _ in side]
            if left[b] > 0 and all(
                u + w <= lim for u, w, (_, lim) in zip(used, need, side, strict=True)
            ):
                assignment[r], left[b] = b, left[b] - 1
                used = [u + w for u, w in zip(used, need, strict=True)]
                break
    return tuple(assignment)


def _flow_arcs(
    problem: Problem,
    reqs: NDArray[np.intp],
    backs: NDArray[np.intp],
    values: NDArray[np.int64],
    bonus: int,
) -> tuple[NDArray[np.int32], NDArray[np.int32], NDArray[np.int64], NDArray[np.int64]]:
    """Tails, heads, capacities and unit costs of the flow network, arcs in this order:
    source -> request, request -> sink ("unplaced", costs the bonus), request -> backend (one per
    allowed pair, costs minus its value), backend -> sink (capacity = slots).
    Nodes: source 0, requests 1..n, backends n+1..n+width, sink n+width+1."""
    import numpy as np

    n, width = len(problem.scores), len(problem.slots)
    sink = n + width + 1
    requests, backends = np.arange(1, n + 1), np.arange(n + 1, sink)
    zeros, ones = np.zeros(n, np.int64), np.ones(n, np.int64)
    slots = np.array([n if s is None else min(s, n) for s in problem.slots], np.int64)
    tails = np.concatenate([zeros, requests, reqs + 1, backends])
    heads = np.concatenate([requests, np.full(n, sink), backs + n + 1, np.full(width, sink)])
    caps = np.concatenate([ones, ones, np.ones(len(values), np.int64), slots])
    costs = np.concatenate([zeros, np.full(n, bonus, np.int64), -values, np.zeros(width, np.int64)])
    return tails.astype(np.int32), heads.astype(np.int32), caps, costs


def _add_slot_limits(
    model: cp_model.CpModel, problem: Problem, x: dict[Pair, cp_model.IntVar]
) -> None:
    """Each request at most once; each backend at most its slots (where that can bind)."""
    per_request: list[list[cp_model.IntVar]] = [[] for _ in problem.scores]
    per_backend: list[list[cp_model.IntVar]] = [[] for _ in problem.slots]
    for (r, b), var in x.items():
        per_request[r].append(var)
        per_backend[b].append(var)
    for variables in per_request:
        if len(variables) > 1:
            model.add_at_most_one(variables)
    for slots, variables in zip(problem.slots, per_backend, strict=True):
        if slots is not None and len(variables) > slots:
            model.add(sum(variables) <= slots)


def _pair_values(
    problem: Problem,
) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.int64], int]:
    """The allowed pairs (request and backend arrays), the integer value of each (scaled score,
    then a preference for the lower backend index that no score difference can be outweighed by)
    and the bonus for placing a request, which exceeds any difference in total value."""
    import numpy as np

    n, width = len(problem.scores), len(problem.slots)
    scores = np.array(problem.scores, dtype=np.float64).reshape(n, width)  # None -> NaN
    allowed = ~np.isnan(scores) & np.array([s != 0 for s in problem.slots], dtype=bool)
    reqs, backs = np.nonzero(allowed)
    step, units = _integer_scale(n, width, len(reqs))
    chosen = scores[allowed]
    largest = float(np.abs(chosen).max(initial=0.0))
    ratios = chosen / largest if largest > 0 else np.zeros_like(chosen)
    values = np.rint(ratios * units).astype(np.int64) * step + (width - 1 - backs)
    high, low = max(0, int(values.max(initial=0))), min(0, int(values.min(initial=0)))
    return reqs, backs, values, n * (high - low) + 1


def _integer_scale(n: int, width: int, pairs: int) -> tuple[int, int]:
    """(tie-break step, units of the largest |score|) for n requests on `width` backends.

    With values in [-units * step, units * step + width) the placing bonus is at most
    n * (2 * units * step + width) + 1; that, plus a value, times the number of terms (CP-SAT's
    objective sum over the pairs, or min-cost flow's nodes + 1) must stay under _INT_LIMIT.
    The step keeps ties on the lower backend exact; only where even one unit of score would
    overflow with it (far beyond max_batch) is it dropped. Raises ValueError where nothing fits."""
    terms = max(pairs, n + width + 3, 1)
    room = _INT_LIMIT // terms - (n + 1) * width - 1
    for step in (n * max(width - 1, 0) + 1, 1):
        units = room // (step * (2 * n + 1))
        if units >= 1:
            return step, min(_SCORE_UNITS, units)
    raise ValueError(f"{n} requests on {width} backends are too many for integer placement")


def _can_bind(problem: Problem, c: SideConstraint) -> bool:
    """Whether some placement could exceed the constraint (if not, it can be dropped)."""
    heaviest: dict[int, int] = {}
    for (r, b), w in c.weights.items():
        if problem.scores[r][b] is not None and problem.slots[b] != 0:
            heaviest[r] = max(heaviest.get(r, 0), _amount(w, _unit(c), up=True))
    return sum(heaviest.values()) > _amount(c.limit, _unit(c), up=False)


def _scaled(c: SideConstraint) -> tuple[dict[Pair, int], int]:
    """A side constraint in integer units: weights rounded up, the limit down (never looser)."""
    unit = _unit(c)
    weights = {p: _amount(w, unit, up=True) for p, w in c.weights.items()}
    return weights, _amount(c.limit, unit, up=False)


def _unit(c: SideConstraint) -> float:
    """Units per amount: a power of ten (so decimal prices stay exact) that puts the constraint's
    largest number between 1e6 and 1e7 units (1e-6 relative resolution)."""
    largest = max(c.limit, max(c.weights.values(), default=0.0))
    if largest <= 0:
        return 1.0
    return 10.0 ** math.ceil(math.log10(_AMOUNT_RESOLUTION / largest))


def _amount(value: float, unit: float, *, up: bool) -> int:
    """`value` in integer units, rounded up or down unless within float noise of an integer."""
    scaled = value * unit
    nearest = round(scaled)
    if abs(scaled - nearest) <= _SNAP * max(1.0, abs(scaled)):
        return nearest
    return math.ceil(scaled) if up else math.floor(scaled)


def _solution(
    problem: Problem, assignment: Sequence[int | None], tier: str, *, optimal: bool
) -> Solution:
    """A Solution with the float objective (sum of scores of the placed pairs)."""
    total = sum(problem.scores[r][b] for r, b in enumerate(assignment) if b is not None)
    return Solution(tuple(assignment), tier, float(total), optimal)
