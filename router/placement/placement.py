"""Joint placement of a batch: candidates + constraints -> solver problem -> decisions.

`plan()` evaluates every request and gathers the batch constraints (on the event loop: policies
read in-memory state); the solver places them (in a worker thread, unless nothing couples the
requests: then the 'single' tier runs inline); `decide()` turns the solution into a Decision or
an error per request.

A soft SideLimit (e.g. headroom's) does not bind a request whose feasible backends are all named
by its policy's soft limits: like a soft filter, it never leaves a request with nowhere to go.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from router.core.errors import NoFeasibleBackend, RouterError
from router.core.framework import (
    BackendView,
    Capacity,
    Constrainer,
    Constraint,
    RequestContext,
    SideLimit,
)
from router.core.types import Candidate, Decision
from router.placement import solver
from router.placement.pipeline import PolicyPipeline


@dataclass(frozen=True, slots=True)
class Plan:
    batch: tuple[RequestContext, ...]
    views: tuple[BackendView, ...]
    candidates: tuple[tuple[Candidate, ...], ...]
    problem: solver.Problem
    side_policies: tuple[str, ...]  # the policy behind each side constraint
    started: float


def plan(
    pipeline: PolicyPipeline,
    batch: Sequence[RequestContext],
    views: Sequence[BackendView],
    candidates: tuple[tuple[Candidate, ...], ...] | None = None,
    started: float | None = None,
) -> Plan:
    """The solver problem for `batch`; `candidates` (pipeline.evaluate per request, of a batch
    that went through pipeline.predict) and the perf_counter time the decision `started` may
    come from a caller that evaluated already."""
    started = time.perf_counter() if started is None else started
    index = {v.name: j for j, v in enumerate(views)}
    if candidates is None:
        batch = pipeline.predict(batch, views)
        candidates = tuple(tuple(pipeline.evaluate(ctx, views)) for ctx in batch)
    scores = [[c.total if c.feasible else None for c in row] for row in candidates]
    slots: list[int | None] = [None] * len(views)
    side: list[solver.SideConstraint] = []
    side_policies: list[str] = []
    for name, members in _constrainers(pipeline, batch).items():
        policy = pipeline.policies[name]
        constraints = policy.constraints([batch[i] for i in members], views)
        exempt = _nowhere_else(constraints, [scores[r] for r in members], index)
        for constraint in constraints:
            if isinstance(constraint, Capacity):
                j = index[constraint.backend]
                slots[j] = constraint.slots if slots[j] is None else min(slots[j], constraint.slots)
            elif isinstance(constraint, SideLimit):
                weights = {
                    (members[i], index[b]): w
                    for (i, b), w in constraint.weights.items()
                    if w
                    and scores[members[i]][index[b]] is not None
                    and not (constraint.soft and i in exempt)
                }
                if weights:
                    side.append(solver.SideConstraint(constraint.name, weights, constraint.limit))
                    side_policies.append(name)
    problem = solver.Problem(scores=scores, slots=slots, side=tuple(side))
    return Plan(tuple(batch), tuple(views), candidates, problem, tuple(side_policies), started)


def _nowhere_else(
    constraints: Sequence[Constraint], rows: Sequence[Sequence[float | None]], index: dict[str, int]
) -> set[int]:
    """The requests (indices into `rows`) whose feasible backends are all named by the soft
    SideLimits among `constraints`: those limits do not bind them."""
    limited = {
        index[b] for c in constraints if isinstance(c, SideLimit) and c.soft for _, b in c.weights
    }
    if not limited:
        return set()
    return {
        i for i, row in enumerate(rows) if all(s is None or j in limited for j, s in enumerate(row))
    }


def _constrainers(
    pipeline: PolicyPipeline, batch: Sequence[RequestContext]
) -> dict[str, list[int]]:
    """Each constraint policy in use -> the indices of the requests whose profile uses it."""
    members: dict[str, list[int]] = {}
    for i, ctx in enumerate(batch):
        for step in pipeline.profile_of(ctx).of(Constrainer):
            members.setdefault(step.name, []).append(i)
    return members


def decide(
    pipeline: PolicyPipeline, p: Plan, solution: solver.Solution, batch_id: int = 0
) -> list[Decision | RouterError]:
    decision_us = int((time.perf_counter() - p.started) * 1e6)
    out: list[Decision | RouterError] = []
    for r, ctx in enumerate(p.batch):
        j = solution.assignment[r]
        if j is None:
            out.append(_unplaced(pipeline, p, solution, r))
            continue
        view, chosen = p.views[j], p.candidates[r][j]
        out.append(
            Decision(
                request_id=ctx.request.request_id,
                backend=view.name,
                model=view.config.model,
                tier=view.tier,
                profile=pipeline.profile_of(ctx).name,
                privacy=ctx.privacy,
                prompt_tokens=ctx.prompt_tokens_on(view.name),
                estimated_cost_usd=chosen.estimated_cost_usd,
                estimated_ttft_ms=chosen.estimated_ttft_ms,
                solver=solution.tier,
                decision_us=decision_us,
                candidates=p.candidates[r],
                batch_size=len(p.batch),
                batch_id=batch_id,
                detected=ctx.detected,
                config_version=pipeline.version,
            )
        )
    return out


def _unplaced(
    pipeline: PolicyPipeline, p: Plan, solution: solver.Solution, r: int
) -> NoFeasibleBackend:
    """Why request r got no backend: each backend with the policy and reason."""
    rejections: list[tuple[str, str, str]] = []
    resource = False
    taken = [0] * len(p.views)
    for j in solution.assignment:
        if j is not None:
            taken[j] += 1
    for j, c in enumerate(p.candidates[r]):
        if not c.feasible:
            rejections.append((c.backend, c.rejected_by, c.reason))
            resource |= pipeline.is_resource(c.rejected_by)
            continue
        resource = True
        slots = p.problem.slots[j]
        if slots is not None and taken[j] >= slots:
            rejections.append((c.backend, "capacity", f"its {slots} free slots went to this batch"))
            continue
        for k, side in enumerate(p.problem.side):
            used = sum(side.weights.get((i, jj), 0.0) for i, jj in enumerate(solution.assignment))
            if (r, j) in side.weights and used + side.weights[(r, j)] > side.limit:
                rejections.append((c.backend, p.side_policies[k], f"{side.name} would be exceeded"))
                break
        else:
            rejections.append((c.backend, "solver", "placed elsewhere to honour the batch limits"))
    return NoFeasibleBackend(rejections, resource=resource)
