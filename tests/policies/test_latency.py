"""latency policy: TTFT estimate, SLO headroom score, and the soft SLO filter."""

from __future__ import annotations

import pytest

from policies.latency import create
from router.core.estimates import estimate_total_ms, estimate_ttft_ms
from tests.conftest import backend_view, context

FAST = backend_view("fast", performance={"prefill_tokens_per_s": 1000, "rtt_ms": 10})
SLOW = backend_view("slow", performance={"prefill_tokens_per_s": 100, "decode_tokens_per_s": 10})


def test_ttft_is_queue_plus_prefill_plus_rtt():
    """An idle backend's TTFT is prompt/prefill rate + RTT; total adds output/decode rate."""
    ctx = context(prompt_tokens=500, max_tokens=20)
    assert estimate_ttft_ms(ctx, FAST) == pytest.approx(500 / 1000 * 1e3 + 10)
    assert estimate_total_ms(ctx, SLOW) == pytest.approx(5000 + 20 / 10 * 1e3)


def test_queue_wait_grows_with_load_beyond_capacity():
    """Requests beyond capacity add queue wait: one request-time per capacity-slot of backlog."""
    idle = backend_view(capacity=2, in_flight=1, performance={"prefill_tokens_per_s": 1e9})
    busy = backend_view(
        capacity=2,
        in_flight=5,
        performance={"prefill_tokens_per_s": 1e9, "decode_tokens_per_s": 256},
    )
    ctx = context(prompt_tokens=1)
    assert estimate_ttft_ms(ctx, idle) == pytest.approx(0.0, abs=1e-3)
    assert estimate_ttft_ms(ctx, busy) == pytest.approx(4 / 2 * 1000, rel=1e-3)


def test_observed_rates_replace_configured_ones():
    """Once requests are observed, the EWMA prefill rate drives the estimate."""
    from dataclasses import replace

    observed = replace(FAST, observed_prefill_tokens_per_s=10_000)
    ctx = context(prompt_tokens=1000)
    assert estimate_ttft_ms(ctx, observed) == pytest.approx(100 + 10)


@pytest.mark.parametrize(
    ("slo", "backend", "score"),
    [(1000, FAST, 1 - 110 / 1000), (100, FAST, 0.0), (0, FAST, 500 / (500 + 110))],
)
def test_score_is_slo_headroom_or_reference_shape(slo, backend, score):
    """With an SLO the score is the clamped headroom; without, reference/(reference+TTFT)."""
    ctx = context(prompt_tokens=100, latency_slo_ms=slo)
    assert create("latency", {}).score(ctx, backend) == pytest.approx(score)


def test_filter_names_the_missed_slo_and_is_soft():
    """Backends missing the SLO get a reason; the policy is soft (kept when none can meet it)."""
    policy = create("latency", {})
    ctx = context(prompt_tokens=100, latency_slo_ms=200)
    assert policy.filter(ctx, FAST) is None
    assert "misses the 200 ms SLO" in policy.filter(ctx, SLOW)
    assert policy.soft
