"""The placement solver: tier choice, hard constraints, ties, and optimality vs brute force."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from router.placement.solver import (
    CP_SAT,
    GREEDY,
    MIN_COST_FLOW,
    SINGLE,
    Problem,
    SideConstraint,
    argmax,
    greedy,
    solve,
    solve_cp_sat,
    solve_min_cost_flow,
)

LONG = 10.0  # a CP-SAT time limit the small instances here never reach, so answers are proven


def every_pair(n: int, width: int, weight: float) -> dict[tuple[int, int], float]:
    return {(r, b): weight for r in range(n) for b in range(width)}


def budget(weights: dict[tuple[int, int], float], limit: float) -> SideConstraint:
    return SideConstraint("budget tenant=acme", weights, limit)


def fits(limit: float, used: float) -> bool:
    """The float semantics of a side constraint, with room only for float summation noise."""
    return used <= limit + 1e-9 * max(1.0, abs(limit))


def violations(problem: Problem, assignment: Sequence[int | None]) -> list[str]:
    """Every hard constraint the assignment breaks (empty when it is feasible)."""
    found = []
    if len(assignment) != len(problem.scores):
        return [f"{len(assignment)} answers for {len(problem.scores)} requests"]
    for r, b in enumerate(assignment):
        if b is not None and problem.scores[r][b] is None:
            found.append(f"request {r} on forbidden backend {b}")
    for b, slots in enumerate(problem.slots):
        taken = sum(1 for a in assignment if a == b)
        if slots is not None and taken > slots:
            found.append(f"backend {b} takes {taken} > {slots}")
    for c in problem.side:
        used = sum(c.weights.get((r, b), 0.0) for r, b in enumerate(assignment) if b is not None)
        if not fits(c.limit, used):
            found.append(f"{c.name} uses {used} > {c.limit}")
    return found


def value(problem: Problem, assignment: Sequence[int | None]) -> tuple[int, float]:
    """(placed requests, total score) of an assignment."""
    placed = [(r, b) for r, b in enumerate(assignment) if b is not None]
    return len(placed), sum(problem.scores[r][b] for r, b in placed)


def brute_force(problem: Problem) -> tuple[int, float]:
    """The lexicographic optimum (placed, total score) over every feasible assignment."""
    n, width = len(problem.scores), len(problem.slots)
    left = [n if s is None else s for s in problem.slots]
    best = (0, 0.0)
    current: list[int | None] = []

    def visit(r: int) -> None:
        nonlocal best
        if r == n:
            if not violations(problem, current):
                best = max(best, value(problem, current))
            return
        for b in [None, *range(width)]:
            if b is not None and (problem.scores[r][b] is None or left[b] == 0):
                continue
            if b is not None:
                left[b] -= 1
            current.append(b)
            visit(r + 1)
            current.pop()
            if b is not None:
                left[b] += 1

    visit(0)
    return best


@st.composite
def problems(draw: st.DrawFn, max_side: int = 2) -> Problem:
    """Small random instances: ties, forbidden pairs, slots None/0/small, 0-2 budgets."""
    n, width = draw(st.integers(1, 6)), draw(st.integers(1, 4))
    score = st.one_of(
        st.none(), st.sampled_from([0.0, 1.0, 2.5]), st.floats(0, 10, allow_nan=False)
    )
    scores = draw(st.lists(st.lists(score, min_size=width, max_size=width), min_size=n, max_size=n))
    slots = draw(st.lists(st.none() | st.integers(0, 3), min_size=width, max_size=width))
    side = []
    for i in range(draw(st.integers(0, max_side))):
        pair = st.tuples(st.integers(0, n - 1), st.integers(0, width - 1))
        amount = st.integers(0, 500).map(lambda cents: cents / 100)
        weights = draw(st.dictionaries(pair, amount, max_size=n * width))
        limit = draw(st.integers(0, 1500).map(lambda cents: cents / 100))
        side.append(SideConstraint(f"side-{i}", weights, limit))
    return Problem(scores, slots, tuple(side))


PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize(
    ("problem", "tier"),
    [
        (Problem([], [1, None]), SINGLE),
        (Problem([[1.0, 2.0]], [None, None]), SINGLE),
        (Problem([[1.0, 2.0]], [None, None], (budget(every_pair(1, 2, 1.0), 1.0),)), SINGLE),
        (Problem([[1.0, 2.0]], [None, None], (budget(every_pair(1, 2, 1.0), 0.5),)), CP_SAT),
        (Problem([[1.0, 2.0]] * 3, [1, None]), SINGLE),  # each request's best fits: uncoupled
        (Problem([[2.0, 1.0]] * 3, [1, None]), MIN_COST_FLOW),
        (Problem([[1.0, 2.0]] * 3, [1, 1], (budget(every_pair(3, 2, 1.0), 3.0),)), MIN_COST_FLOW),
        (Problem([[1.0, 2.0]] * 3, [1, 1], (budget(every_pair(3, 2, 1.0), 2.9),)), CP_SAT),
        (Problem([[1.0, None]] * 3, [1, 1], (budget({(0, 1): 9.0}, 0.0),)), MIN_COST_FLOW),
    ],
)
def test_solve_picks_the_cheapest_exact_tier(problem: Problem, tier: str) -> None:
    """solve() uses single/min-cost-flow/CP-SAT as the batch size and binding budgets require."""
    solution = solve(problem, time_limit_s=LONG)
    assert (solution.tier, solution.optimal) == (tier, True)
    assert not violations(problem, solution.assignment)


@pytest.mark.parametrize(
    ("scores", "slots", "side", "expected"),
    [
        # single: best allowed backend; slots 0 and forbidden pairs are skipped; ties -> lowest
        ([[1.0, 5.0, 3.0]], [None, 0, 1], (), (2,)),
        ([[None, 2.0, 2.0]], [None, None, None], (), (1,)),
        ([[None, None]], [None, None], (), (None,)),
        ([[4.0]], [0], (), (None,)),
        # min-cost flow: slots respected, forbidden pairs avoided, ties to the lower backend
        ([[3.0, 1.0], [2.0, 1.0], [1.0, 0.5]], [1, None], (), (0, 1, 1)),
        ([[2.0, 2.0], [2.0, 2.0]], [None, None], (), (0, 0)),
        ([[None, 1.0], [2.0, None]], [None, None], (), (1, 0)),
        # capacity runs out: the weakest request stays unplaced
        ([[3.0], [1.0], [2.0]], [2], (), (0, None, 0)),
        # placing more requests beats a higher total score
        ([[10.0, 1.0], [5.0, None]], [1, 1], (), (1, 0)),
        # a binding budget moves one request to the cheap backend (CP-SAT)
        (
            [[3.0, 1.0], [2.5, 1.0]],
            [None, None],
            ({(0, 0): 1.0, (1, 0): 1.0, (0, 1): 0.1, (1, 1): 0.1}, 1.1),
            (0, 1),
        ),
        # a budget that fits only one request leaves the other unplaced
        ([[3.0], [2.0]], [None], ({(0, 0): 0.6, (1, 0): 0.6}, 1.0), (0, None)),
    ],
)
def test_solve_finds_the_expected_placement(
    scores: list[list[float | None]],
    slots: list[int | None],
    side: tuple[dict[tuple[int, int], float], float] | tuple[()],
    expected: tuple[int | None, ...],
) -> None:
    """solve() honours slots, forbidden pairs and budgets and places as many requests as it can."""
    constraints = (budget(*side),) if side else ()
    problem = Problem(scores, slots, constraints)
    solution = solve(problem, time_limit_s=LONG)
    assert solution.assignment == expected
    assert solution.objective == pytest.approx(value(problem, expected)[1])
    assert solution.optimal


TIED = Problem([[1.0, 1.0, 1.0]] * 4, [None, None, None])
TIED_BUDGET = Problem(TIED.scores, TIED.slots, (budget({(r, 0): 1.0 for r in range(4)}, 2.0),))


@pytest.mark.parametrize(
    ("method", "problem", "expected"),
    [
        (lambda p: solve(p).assignment, Problem(TIED.scores[:1], TIED.slots), [0]),
        (lambda p: solve(p).assignment, TIED, [0, 0, 0, 0]),
        (lambda p: solve_min_cost_flow(p).assignment, TIED, [0, 0, 0, 0]),
        (lambda p: solve_cp_sat(p, time_limit_s=LONG).assignment, TIED, [0, 0, 0, 0]),
        (lambda p: solve(p, time_limit_s=LONG).assignment, TIED_BUDGET, [0, 0, 1, 1]),
        (greedy, TIED, [0, 0, 0, 0]),
        (greedy, TIED_BUDGET, [0, 0, 1, 1]),
    ],
    ids=["single", "solve", "min-cost-flow", "cp-sat", "cp-sat-budget", "greedy", "greedy-budget"],
)
def test_ties_break_deterministically(method, problem: Problem, expected: list[int]) -> None:
    """Equal scores give the same answer on every run, and go to the lowest backend that fits."""
    answers = {method(problem) for _ in range(3)}
    assert len(answers) == 1
    assert sorted(answers.pop()) == expected


def test_min_cost_flow_rejects_side_constraints() -> None:
    """solve_min_cost_flow() refuses a problem it cannot express instead of ignoring the budget."""
    problem = Problem([[1.0]], [None], (budget({(0, 0): 1.0}, 0.5),))
    with pytest.raises(ValueError, match="side constraints"):
        solve_min_cost_flow(problem)


def test_cp_sat_without_time_falls_back_to_greedy() -> None:
    """With no time to search, CP-SAT returns the feasible greedy answer with tier greedy."""
    problem = Problem([[3.0, 1.0], [2.5, 1.0]], [None, None], (budget(every_pair(2, 2, 1.0), 1.0),))
    solution = solve_cp_sat(problem, time_limit_s=0.0)
    assert (solution.tier, solution.optimal) == (GREEDY, False)
    assert solution.assignment == greedy(problem) == (0, None)


def test_greedy_keeps_every_constraint() -> None:
    """greedy() serves the best requests first and skips placements that would break a limit."""
    problem = Problem(
        [[5.0, 4.0], [3.0, None], [2.0, 1.0]],
        [1, None],
        (budget({(0, 1): 1.0, (2, 1): 1.0}, 1.0),),
    )
    assert greedy(problem) == (0, None, 1)
    assert not violations(problem, greedy(problem))


@pytest.mark.parametrize(
    ("totals", "best"),
    [
        ([], None),
        ([None, None], None),
        ([1.0, 3.0, 3.0], 1),
        ([None, 0.0], 1),
        ([-1, None, -0.5], 2),
    ],
)
def test_argmax_is_unchanged(totals: list[float | None], best: int | None) -> None:
    """argmax() still returns the first best feasible index, as the scheduler expects."""
    assert argmax(totals) == best


@pytest.mark.parametrize(
    "build",
    [
        lambda: Problem([[1.0], [1.0, 2.0]], [None]),
        lambda: Problem([[1.0]], [-1]),
        lambda: Problem([[1.0]], [None], (budget({(1, 0): 1.0}, 1.0),)),
        lambda: SideConstraint("neg", {(0, 0): -1.0}, 1.0),
        lambda: SideConstraint("neg", {}, -1.0),
    ],
    ids=["ragged", "negative-slots", "pair-out-of-range", "negative-weight", "negative-limit"],
)
def test_malformed_problems_are_rejected(build) -> None:
    """Ragged scores, negative slots or amounts and unknown pairs raise ValueError."""
    with pytest.raises(ValueError):
        build()


def test_import_and_single_tier_do_not_load_ortools() -> None:
    """Importing the module and solving one request stay cheap: OR-Tools is imported lazily."""
    code = (
        "import sys; from router.placement.solver import Problem, solve; "
        "solve(Problem([[1.0, 2.0]], [None, None])); print('ortools' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@PROPERTY
@given(problems())
def test_solve_matches_brute_force(problem: Problem) -> None:
    """solve() reaches the brute-force lexicographic optimum (placed, then total score)."""
    solution = solve(problem, time_limit_s=LONG)
    placed, total = value(problem, solution.assignment)
    best_placed, best_total = brute_force(problem)
    assert solution.optimal
    assert placed == best_placed
    assert total == pytest.approx(best_total, abs=1e-3 * len(problem.scores))
    assert solution.objective == pytest.approx(total)


@PROPERTY
@given(problems())
def test_no_method_breaks_a_hard_constraint(problem: Problem) -> None:
    """solve(), greedy() and solve_cp_sat() never break forbidden pairs, slots or budgets."""
    assert not violations(problem, solve(problem).assignment)
    assert not violations(problem, greedy(problem))
    assert not violations(problem, solve_cp_sat(problem).assignment)


@PROPERTY
@given(problems(max_side=0))
def test_min_cost_flow_agrees_with_cp_sat(problem: Problem) -> None:
    """Without side constraints the flow and CP-SAT tiers reach the same (placed, score)."""
    flow = solve_min_cost_flow(problem)
    sat = solve_cp_sat(problem, time_limit_s=LONG)
    assert sat.optimal
    assert value(problem, flow.assignment)[0] == value(problem, sat.assignment)[0]
    assert flow.objective == pytest.approx(sat.objective, abs=1e-3 * len(problem.scores))


def scaled(problem: Problem, factor: float) -> Problem:
    """The same problem with every score multiplied by `factor`."""
    scores = [[None if s is None else s * factor for s in row] for row in problem.scores]
    return Problem(scores, problem.slots, problem.side)


SCALES = [1e-300, 1e-12, 1e-6, 1e6, 1e10, 1e15, 1e300]
TIER_CASES = [
    (SINGLE, Problem([[1.0, 2.0, 1.5]], [None, None, None])),
    (MIN_COST_FLOW, Problem([[1.0, 2.0]] * 3, [None, 1])),
    (MIN_COST_FLOW, Problem([[3.0, 1.0], [2.0, 1.0], [1.0, 0.5]], [1, None])),
    (
        CP_SAT,
        Problem([[3.0, 1.0], [2.5, 1.0]], [None, None], (budget(every_pair(2, 2, 1.0), 1.0),)),
    ),
    (CP_SAT, Problem([[1.0, 1.1], [1.0, 1.2]], [None, None], (budget({(0, 1): 1, (1, 1): 1}, 1),))),
    (CP_SAT, Problem([[1.0, 1.0], [1.0, 1.0]], [None, None], (budget({(0, 0): 1, (1, 0): 1}, 1),))),
]


@pytest.mark.parametrize("factor", SCALES)
@pytest.mark.parametrize(("tier", "problem"), TIER_CASES)
def test_score_magnitude_does_not_change_the_placement(
    tier: str, problem: Problem, factor: float
) -> None:
    """Huge, tiny or equal scores place exactly as the same scores at a moderate scale."""
    expected = solve(problem, time_limit_s=LONG)
    got = solve(scaled(problem, factor), time_limit_s=LONG)
    assert (got.tier, got.assignment) == (tier, expected.assignment)
    assert got.optimal


@pytest.mark.parametrize("factor", SCALES)
@pytest.mark.parametrize("problem", [p for tier, p in TIER_CASES if tier == CP_SAT])
def test_greedy_tier_is_scale_free(problem: Problem, factor: float) -> None:
    """The greedy tier (CP-SAT out of time) gives the same answer at any score magnitude."""
    expected = solve_cp_sat(problem, time_limit_s=0.0)
    got = solve_cp_sat(scaled(problem, factor), time_limit_s=0.0)
    assert (got.tier, got.assignment) == (GREEDY, expected.assignment)


@pytest.mark.parametrize("factor", [1e8, 1e10, 1e15])
def test_large_batch_with_huge_totals_places_every_request(factor: float) -> None:
    """256 requests with totals near 1e8..1e15 are placed by min-cost flow and CP-SAT, as at 1x."""
    import random

    rng = random.Random(7)
    scores = [[rng.uniform(0, 5) for _ in range(4)] for _ in range(256)]
    flow = Problem(scores, [64, 64, 64, None])
    sat = Problem(scores, [None] * 4, (budget(every_pair(256, 4, 1.0), 200.0),))
    for problem, tier in ((flow, MIN_COST_FLOW), (sat, CP_SAT)):
        expected = solve(problem, time_limit_s=LONG)
        got = solve(scaled(problem, factor), time_limit_s=LONG)
        assert got.tier == tier == expected.tier
        assert value(problem, got.assignment)[0] == value(problem, expected.assignment)[0]
        assert value(problem, got.assignment)[1] == pytest.approx(
            value(problem, expected.assignment)[1], rel=1e-4
        )


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_scores_are_rejected(bad: float) -> None:
    """A NaN or infinite score raises ValueError naming the request, before any solver runs."""
    with pytest.raises(ValueError, match="request 1 has score"):
        Problem([[1.0, 2.0], [bad, 1.0]], [None, None])


@PROPERTY
@given(problems(), st.sampled_from([1e-200, 1e-9, 1e9, 1e200]))
def test_scaling_every_score_keeps_the_placement(problem: Problem, factor: float) -> None:
    """Multiplying every score by one positive factor leaves solve()'s placement unchanged."""
    assume(all(s is None or s == 0 or s > 1e-100 for row in problem.scores for s in row))
    expected = solve(problem, time_limit_s=LONG)
    got = solve(scaled(problem, factor), time_limit_s=LONG)
    assert (got.tier, got.assignment) == (expected.tier, expected.assignment)
