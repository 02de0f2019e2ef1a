"""Parsers shared by the HTTP backends: SSE lines and events, Retry-After, vLLM metrics."""

from __future__ import annotations

import pytest

from backends.http_common import body_snippet, parse_json, parse_retry_after
from backends.openai_compat import parse_vllm_metrics
from router.config import MAX_EJECTION_S
from router.core.errors import BackendUnavailable


def test_vllm_metrics_are_summed_over_label_sets():
    """Gauges with several label sets are summed; comments and other metrics are ignored."""
    text = (
        "# HELP vllm:num_requests_waiting waiting\n"
        'vllm:num_requests_waiting{model_name="a"} 2.0\n'
        'vllm:num_requests_waiting{model_name="b",engine="1"} 3.0\n'
        "vllm:num_requests_running 4\n"
        'vllm:kv_cache_usage_perc{model_name="a"} 0.5\n'
        "vllm:other_total 99\n"
    )
    assert parse_vllm_metrics(text) == {"waiting": 5.0, "running": 4.0, "kv_cache_usage": 0.5}


def test_retry_after_parsing():
    """Retry-After accepts seconds and HTTP-dates; garbage and past dates are handled."""
    assert parse_retry_after("2.5") == 2.5
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


@pytest.mark.parametrize(
    "value",
    [
        "inf",
        "Infinity",
        "1e12",
        "1e400",
        "Fri, 01 Jan 2100 00:00:00 GMT",
        "Fri, 01 Jan 2100 00:00:00 -0000",
    ],
)
def test_a_huge_retry_after_is_capped(value):
    """A Retry-After of inf, 1e12 or a date in 2100 is capped at the longest allowed ejection."""
    assert parse_retry_after(value) == MAX_EJECTION_S
    assert parse_retry_after(value, limit_s=300) == 300


@pytest.mark.parametrize(
    "value",
    [
        "nan",
        "-5",
        "-inf",
        "",
        "  ",
        "Wed, 32 Oct 2015 07:28:00 GMT",
        "Wed, 21 Oct 99999 07:28:00 GMT",
        "1" * 100,
    ],
)
def test_a_nonsense_retry_after_is_ignored(value):
    """NaN, negative, overlong or impossible Retry-After values are no Retry-After at all."""
    assert parse_retry_after(value) is None


def test_deeply_nested_json_is_malformed_not_a_crash():
    """JSON nested beyond Python's recursion limit is a malformed event, and no error body crash."""
    with pytest.raises(BackendUnavailable, match="not a JSON object"):
        parse_json("up", "[" * 100_000)
    assert body_snippet(b'{"error": ' * 20_000).startswith('{"error"')
