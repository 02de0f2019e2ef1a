"""headroom policy: trusted slots kept for requests that only trusted backends may serve."""

from __future__ import annotations

import pytest

from policies.headroom import create
from router.core.types import Privacy
from tests.conftest import backend_view, context

GPU = dict(tier="cloud_gpu", limit=8)


@pytest.mark.parametrize(
    ("privacy", "in_flight", "trust", "excluded"),
    [
        (Privacy.PUBLIC, 5, None, False),  # 3 of 8 free > 25%
        (Privacy.PUBLIC, 6, None, True),  # 2 of 8 free <= 25%: kept for private requests
        (Privacy.INTERNAL, 8, None, True),
        (Privacy.CONFIDENTIAL, 7, None, False),  # protected classes may use the room
        (Privacy.RESTRICTED, 7, None, False),
        (Privacy.PUBLIC, 8, "third_party", False),  # only trusted backends keep room
    ],
)
def test_room_is_kept_on_trusted_backends(privacy, in_flight, trust, excluded):
    """Flexible requests are kept off nearly full trusted backends; protected ones are not."""
    view = backend_view("gpu", in_flight=in_flight, trust=trust, **GPU)
    ctx = context(privacy=privacy)
    reason = create("headroom", {}).filter(ctx, view)
    assert (reason is not None) == excluded
    if excluded:
        assert "kept for CONFIDENTIAL/RESTRICTED requests" in reason


def test_unlimited_backends_are_never_filtered_and_the_filter_is_soft():
    """A backend without a slot limit keeps no room; the policy only filters among others."""
    policy = create("headroom", {"fraction": 0.5})
    assert policy.filter(context(privacy=Privacy.PUBLIC), backend_view("gpu", in_flight=99)) is None
    assert policy.soft


@pytest.mark.parametrize(
    ("parameters", "message"),
    [({"fraction": 1.5}, "fraction"), ({"protected": ["SECRET"]}, "unknown privacy class")],
)
def test_bad_parameters_are_named(parameters, message):
    """Out-of-range fractions and unknown classes are refused, naming the parameter."""
    with pytest.raises(ValueError, match=message):
        create("headroom", parameters)


def test_in_the_pipeline_flexible_requests_move_to_the_api_only_when_it_exists():
    """Through the scheduler: a PUBLIC request skips the nearly full GPU for the API, but keeps
    the GPU when there is no other backend (the filter is soft)."""
    from router.config import parse_config
    from router.core.registry import default_registry
    from router.placement.pipeline import PolicyPipeline

    config = parse_config(
        "backends:\n  gpu: {type: scripted, model: m, tier: cloud_gpu}\n"
        "  api: {type: scripted, model: m, tier: remote_api}\n"
        "policies:\n  headroom: {type: headroom}\n"
        "profiles:\n  default: {policies: [{policy: headroom}]}\n",
        "<test>",
    )
    pipeline = PolicyPipeline(config, default_registry())
    gpu = backend_view("gpu", in_flight=7, **GPU)
    ctx = context(privacy=Privacy.PUBLIC)
    both = {c.backend: c for c in pipeline.evaluate(ctx, [gpu, backend_view("api")])}
    assert not both["gpu"].feasible and both["gpu"].rejected_by == "headroom"
    assert both["api"].feasible
    (alone,) = pipeline.evaluate(ctx, [gpu])
    assert alone.feasible


@pytest.mark.parametrize(
    ("limit", "in_flight", "fraction"),
    [
        (8, 0, 0.25),
        (8, 5, 0.25),
        (8, 6, 0.25),
        (10, 0, 0.25),
        (10, 1, 0.3),
        (7, 0, 0.5),
        (3, 0, 0.1),
    ],
)
def test_allowed_matches_the_filter_arriving_one_by_one(limit, in_flight, fraction):
    """allowed(b) is exactly how many unprotected requests the filter lets onto b one by one."""
    policy = create("headroom", {"fraction": fraction})
    ctx = context(privacy=Privacy.INTERNAL)

    def gpu(in_flight: int):
        return backend_view("gpu", in_flight=in_flight, tier="cloud_gpu", limit=limit)

    passed = 0
    while policy.filter(ctx, gpu(in_flight + passed)) is None:
        passed += 1
    assert policy.allowed(gpu(in_flight)) == passed


def test_constraints_limit_unprotected_requests_on_trusted_backends():
    """A burst of 8 INTERNAL requests and one CONFIDENTIAL gets a soft limit of 6 on the 8-slot
    GPU, over the INTERNAL requests only; third-party and unlimited backends get none."""
    policy = create("headroom", {})
    batch = [context(privacy=Privacy.INTERNAL) for _ in range(8)]
    batch.insert(3, context(privacy=Privacy.CONFIDENTIAL))
    views = [
        backend_view("gpu", **GPU),
        backend_view("api", tier="remote_api", limit=8),
        backend_view("free", tier="cloud_gpu"),
    ]
    (limit,) = policy.constraints(batch, views)
    assert limit.soft and limit.limit == 6
    assert set(limit.weights) == {(i, "gpu") for i in range(9) if i != 3}
    assert set(limit.weights.values()) == {1.0}
    assert "headroom on gpu: 6 of its 8 free slots" in limit.name
    assert policy.constraints(batch[:6], views) == []  # 6 flexible requests fit: cannot bind
    assert policy.constraints([context(privacy=Privacy.RESTRICTED)] * 9, views) == []


def pipeline(*profile: str):
    """A pipeline whose default profile uses `profile`; backends come as views."""
    from router.config import parse_config
    from router.core.registry import default_registry
    from router.placement.pipeline import PolicyPipeline

    steps = ", ".join(f"{{policy: {p}}}" for p in profile)
    config = parse_config(
        "backends:\n  gpu: {type: scripted, model: m}\n"
        "policies:\n  headroom: {type: headroom}\n  cost: {type: cost}\n"
        f"  capacity: {{type: capacity}}\nprofiles:\n  default: {{policies: [{steps}]}}\n",
        "<test>",
    )
    return PolicyPipeline(config, default_registry())


def api(limit: int = 0):
    """A third-party API that costs more than the GPU."""
    return backend_view("api", tier="remote_api", limit=limit, price={"per_request": 0.01})


def place(sched, batch, views):
    from router.placement import placement, solver

    p = placement.plan(sched, batch, views)
    return p, placement.decide(sched, p, solver.solve(p.problem, time_limit_s=2.0))


def test_a_burst_keeps_the_room_and_goes_to_cp_sat():
    """8 INTERNAL requests placed jointly leave 2 of the GPU's 8 slots free (CP-SAT sees the
    limit); a lone request's limit cannot bind and is dropped (tier single)."""
    sched = pipeline("headroom", "cost")
    views = [backend_view("gpu", **GPU), api()]
    batch = [context(privacy=Privacy.INTERNAL) for _ in range(8)]
    _, decisions = place(sched, batch, views)
    assert sorted(d.backend for d in decisions) == ["api"] * 2 + ["gpu"] * 6
    assert {d.solver for d in decisions} == {"cp-sat"}
    _, (alone,) = place(sched, batch[:1], views)
    assert (alone.backend, alone.solver) == ("gpu", "single")


def test_the_limit_does_not_bind_requests_with_nowhere_else_to_go():
    """Soft: with only the GPU, all 8 INTERNAL requests are placed on it, as the filter would."""
    sched = pipeline("headroom", "cost")
    p, decisions = place(
        sched, [context(privacy=Privacy.INTERNAL) for _ in range(8)], [backend_view("gpu", **GPU)]
    )
    assert [d.backend for d in decisions] == ["gpu"] * 8 and p.problem.side == ()


def test_an_unplaced_request_names_headroom():
    """When the API's one slot is taken and the GPU's open slots are gone, the unplaced request's
    error names headroom for the GPU and capacity for the API."""
    from router.core.errors import NoFeasibleBackend

    sched = pipeline("capacity", "headroom", "cost")
    views = [backend_view("gpu", **GPU), api(limit=1)]
    results = place(sched, [context(privacy=Privacy.INTERNAL) for _ in range(8)], views)[1]
    (unplaced,) = [r for r in results if isinstance(r, NoFeasibleBackend)]
    assert unplaced.code == "RESOURCE_EXHAUSTED"
    assert "gpu excluded by headroom: headroom on gpu: 6 of its 8 free slots" in str(unplaced)
    assert "api excluded by capacity" in str(unplaced)
