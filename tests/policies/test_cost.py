"""cost policy: the formula, the score's shape and the max_cost_usd cap."""

from __future__ import annotations

import pytest

from policies.cost import create
from tests.conftest import backend_view, context

PRICED = backend_view(price={"input_per_mtok": 1.0, "output_per_mtok": 2.0, "per_request": 0.001})


def test_score_is_one_when_free_and_half_at_the_reference():
    """A free backend scores 1; one costing exactly reference_usd scores 0.5."""
    policy = create("cost", {"reference_usd": 0.0013})
    ctx = context(prompt_tokens=100, max_tokens=100)  # 100*1e-6 + 100*2e-6 + 0.001 = 0.0013
    assert policy.score(ctx, backend_view()) == 1.0
    assert policy.score(ctx, PRICED) == pytest.approx(0.5)


def test_expected_output_ratio_lowers_the_expected_cost():
    """With expected_output_ratio 0.5 only half of max_tokens is priced for the score."""
    full = create("cost", {}).score(context(max_tokens=1000), PRICED)
    half = create("cost", {"expected_output_ratio": 0.5}).score(context(max_tokens=1000), PRICED)
    assert half > full


@pytest.mark.parametrize(
    ("cap", "excluded"), [(None, False), (0.0013, False), (0.0012999, True), (0.0, True)]
)
def test_max_cost_is_a_hard_filter_on_the_worst_case(cap, excluded):
    """A backend whose worst-case cost exceeds max_cost_usd is excluded with the figures."""
    reason = create("cost", {}).filter(context(max_cost_usd=cap), PRICED)
    assert (reason is not None) == excluded
    if excluded:
        assert "exceeds max_cost_usd" in reason


def test_bad_parameters_are_named():
    """Unknown or out-of-range parameters raise ValueError naming them."""
    with pytest.raises(ValueError, match="reference_usd"):
        create("cost", {"reference_usd": -1})
    with pytest.raises(ValueError, match="colour: unknown parameter"):
        create("cost", {"colour": 1})
