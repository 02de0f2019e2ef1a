"""headroom policy: trusted slots kept for requests that only trusted backends may serve."""

from __future__ import annotations

import pytest

from policies.headroom import create
from router.types import Privacy
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
    from router.registry import default_registry
    from router.scheduler import Scheduler

    config = parse_config(
        "backends:\n  gpu: {type: scripted, model: m, tier: cloud_gpu}\n"
        "  api: {type: scripted, model: m, tier: remote_api}\n"
        "policies:\n  headroom: {type: headroom}\n"
        "profiles:\n  default: {policies: [{policy: headroom}]}\n",
        "<test>",
    )
    scheduler = Scheduler(config, default_registry())
    gpu = backend_view("gpu", in_flight=7, **GPU)
    ctx = context(privacy=Privacy.PUBLIC)
    both = {c.backend: c for c in scheduler.evaluate(ctx, [gpu, backend_view("api")])}
    assert not both["gpu"].feasible and both["gpu"].rejected_by == "headroom"
    assert both["api"].feasible
    (alone,) = scheduler.evaluate(ctx, [gpu])
    assert alone.feasible
