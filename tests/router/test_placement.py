"""Joint placement (router/placement.py): how plan() turns policy constraints into the problem."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from router import placement
from router.config import parse_config
from router.framework import BackendView, RequestContext, SideLimit
from router.pipeline import PolicyPipeline
from router.registry import default_registry
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
