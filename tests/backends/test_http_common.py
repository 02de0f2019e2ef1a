"""Parsers shared by the HTTP backends: SSE lines and events, Retry-After, vLLM metrics."""

from __future__ import annotations

from backends.http_common import parse_retry_after, sse_events, sse_lines
from backends.openai_compat import parse_vllm_metrics


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


async def test_sse_parser_splits_only_on_sse_line_ends():
    """CRLF split across chunks, comments and U+2028 inside data are handled per the SSE spec."""

    async def chunks():
        for part in [
            b": hi\r",
            b"\ndata: a\xe2\x80",
            b"\xa8b\r\n",
            b"\r\nevent: x\ndata: 1\n",
            b"\n",
        ]:
            yield part

    events = [e async for e in sse_events(sse_lines(chunks()))]
    assert events == [("message", "a\u2028b"), ("x", "1")]


def test_retry_after_parsing():
    """Retry-After accepts seconds and HTTP-dates; garbage and past dates are handled."""
    assert parse_retry_after("2.5") == 2.5
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
