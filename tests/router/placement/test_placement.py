"""Joint placement (router/placement/placement.py) against small fake constrainers: plan() builds
the solver problem from the policies in use, decide() turns a solution into decisions or errors."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pytest
import yaml

from router.config import parse_config
from router.core.errors import NoFeasibleBackend
from router.core.framework import BackendView, Capacity, RequestContext, SideLimit
from router.core.registry import default_registry
from router.core.types import Decision
from router.placement import placement, solver
from router.placement.pipeline import PolicyPipeline
from tests.conftest import backend_view, context


class OneOnGpu:
    """A constrainer: at most one request of the batch on "gpu" (soft or hard)."""

    def __init__(self, name: str, parameters: dict) -> None:
        self.name = name
        self.soft = bool(parameters.get("soft"))

    def constraints(
        self, batch: Sequence[RequestContext], backends: Sequence[BackendView]
    ) -> list[SideLimit]:
        weights = {(i, "gpu"): 1.0 for i in range(len(batch))}
        return [SideLimit("one on gpu", weights, 1.0, soft=self.soft)]


def plan_two(soft: bool) -> placement.Plan:
    """Two requests: one may use gpu or api, the other only gpu (it names gpu's model)."""
    registry = default_registry()
    registry.register("one-on-gpu", OneOnGpu)
    config = parse_config(
        "backends:\n  gpu: {type: scripted, model: g}\n  api: {type: scripted, model: a}\n"
        f"policies:\n  limit: {{type: one-on-gpu, parameters: {{soft: {str(soft).lower()}}}}}\n"
        "  capability: {type: capability}\n"
        "profiles:\n  default: {policies: [{policy: capability}, {policy: limit}]}\n",
        "<test>",
    )
    pipeline = PolicyPipeline(config, registry)
    views = [backend_view("gpu", model="g"), backend_view("api", model="a")]
    return placement.plan(pipeline, [context(), context(model="g")], views)


@pytest.mark.parametrize("soft", [True, False])
def test_a_soft_limit_does_not_bind_a_request_with_nowhere_else_to_go(soft):
    """A soft SideLimit keeps its weight for the request that could go elsewhere and drops it
    for the one whose only feasible backend it limits; a hard one keeps both."""
    (side,) = plan_two(soft).problem.side
    expected = {(0, 0): 1.0} if soft else {(0, 0): 1.0, (1, 0): 1.0}
    assert dict(side.weights) == expected and side.limit == 1.0


class Slots:
    """A constrainer giving each backend in `slots` that many slots for the batch."""

    def __init__(self, name: str, parameters: dict) -> None:
        self.name = name
        self.slots = parameters.get("slots", {})
        self.resource = True

    def constraints(
        self, batch: Sequence[RequestContext], backends: Sequence[BackendView]
    ) -> list[Capacity]:
        return [Capacity(b, n) for b, n in self.slots.items()]


def slotted(profiles: dict[str, list[str]], **slots: dict[str, int]) -> PolicyPipeline:
    """gpu and api backends, a capability filter and one Slots policy per keyword."""
    registry = default_registry()
    registry.register("slots", Slots)
    policies = {"capability": {"type": "capability"}}
    policies.update({n: {"type": "slots", "parameters": {"slots": s}} for n, s in slots.items()})
    data = {
        "backends": {
            "gpu": {"type": "scripted", "model": "g"},
            "api": {"type": "scripted", "model": "a"},
        },
        "policies": policies,
        "profiles": {n: {"policies": [{"policy": p} for p in ps]} for n, ps in profiles.items()},
    }
    return PolicyPipeline(parse_config(yaml.safe_dump(data), "<test>"), registry)


VIEWS = [backend_view("gpu", model="g"), backend_view("api", model="a")]


def test_capacities_take_the_tightest_slots_of_the_policies_in_use():
    """Two constrainers limiting one backend give it the smaller slot count; a backend no
    constrainer names stays unlimited."""
    p = slotted({"default": ["capability", "x", "y"]}, x={"gpu": 3}, y={"gpu": 1})
    assert placement.plan(p, [context()], VIEWS).problem.slots == [1, None]


def test_a_constrainer_binds_only_the_requests_whose_profile_uses_it():
    """A request whose profile does not list the constrainer is not counted in its limits."""
    p = slotted({"default": ["capability"], "limited": ["capability", "x"]}, x={"gpu": 1})
    free = placement.plan(p, [context(), context()], VIEWS)
    assert free.problem.slots == [None, None]
    mixed = placement.plan(p, [context(), context(profile="limited")], VIEWS)
    assert mixed.problem.slots == [1, None]


def test_decide_turns_a_solution_into_decisions_and_explained_errors():
    """A placed request gets a Decision with its profile, batch and config version; one left
    out for lack of slots gets RESOURCE_EXHAUSTED naming each backend and why."""
    p = slotted({"default": ["capability", "x"]}, x={"gpu": 1})
    batch = [
        dataclasses.replace(context(model="g", request_id=r), profile=p.profiles["default"])
        for r in ("r1", "r2")
    ]
    plan = placement.plan(p, batch, VIEWS)
    solution = solver.solve(plan.problem)
    results = placement.decide(p, plan, solution, batch_id=7)
    (placed,) = [r for r in results if isinstance(r, Decision)]
    (unplaced,) = [r for r in results if not isinstance(r, Decision)]
    assert placed.request_id in ("r1", "r2") and (placed.backend, placed.profile) == (
        "gpu",
        "default",
    )
    assert (placed.batch_size, placed.batch_id, placed.config_version) == (2, 7, p.version)
    assert isinstance(unplaced, NoFeasibleBackend) and unplaced.code == "RESOURCE_EXHAUSTED"
    assert unplaced.rejections == [
        ("gpu", "capacity", "its 1 free slots went to this batch"),
        ("api", "capability", unplaced.rejections[1][2]),
    ]
