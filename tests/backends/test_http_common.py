"""Parsers shared by the HTTP backends: SSE lines and events, Retry-After, vLLM metrics."""

from __future__ import annotations

import math
import time

import pytest

from backends.http_common import body_snippet, parse_json, parse_retry_after
from backends.openai_compat import parse_vllm_metrics
from backends.sse import sse_events, sse_lines
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

    events = [e async for e in sse_events(sse_lines(chunks(), "b"), "b")]
    assert events == [("message", "a\u2028b"), ("x", "1")]


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


async def lines_of(*parts: bytes) -> list[str]:
    """The lines sse_lines makes of a stream delivered as `parts`."""

    async def chunks():
        for part in parts:
            yield part

    return [line async for line in sse_lines(chunks(), "up")]


async def test_sse_line_ends_split_across_chunks():
    """CRLF split across chunks, CR at a chunk end, bare CR and LF each end exactly one line."""
    assert await lines_of(b"a\r", b"\nb\r", b"c\n", b"\r\nd") == ["a", "b", "c", "", "d"]
    assert await lines_of(b"a\r", b"", b"\n", b"b\r\n") == ["a", "b"]
    assert await lines_of(b"a\r\r", b"\n\n") == ["a", "", ""]
    assert await lines_of(b"\r", b"\n") == [""]


async def test_sse_multibyte_characters_split_across_chunks():
    """A UTF-8 character cut between chunks (even byte by byte) is decoded once, whole."""
    text = "d\u00e9j\u00e0 \u20ac \U0001f600".encode()
    assert await lines_of(*(text[i : i + 1] for i in range(len(text))), b"\n") == [text.decode()]
    assert await lines_of(b"\xe2\x82", b"") == ["\ufffd"]  # cut off for good: replaced


async def test_sse_a_line_of_many_chunks_is_joined_whole():
    """A line delivered in many pieces comes out as one line, then the next one."""
    parts = [b"data: "] + [b"%d," % i for i in range(3000)] + [b"\n\nnext\n"]
    line = "data: " + "".join(f"{i}," for i in range(3000))
    assert await lines_of(*parts) == [line, "", "next"]


async def test_sse_leading_bom_is_dropped():
    """A leading U+FEFF is ignored, also when its bytes are split; a later one is data."""
    bom = "\ufeff".encode()
    assert await lines_of(bom + b"data: a\n") == ["data: a"]
    assert await lines_of(bom[:1], bom[1:2], bom[2:] + b"data: a\n") == ["data: a"]
    assert await lines_of(bom, bom + b"x\n") == ["\ufeffx"]
    assert await lines_of(b"a\n" + bom + b"b\n") == ["a", "\ufeffb"]


async def test_sse_bom_before_the_first_event_through_sse_events():
    """With a BOM before `data:`, the first event is still parsed (not an unknown field)."""

    async def chunks():
        yield b"\xef\xbb"
        yield b"\xbfdata: 1\n\ndata: 2\n\n"

    events = [e async for e in sse_events(sse_lines(chunks(), "b"), "b")]
    assert events == [("message", "1"), ("message", "2")]


async def test_sse_an_endless_line_fails_naming_the_backend():
    """A line that never ends fails with BackendUnavailable once it passes the limit."""

    async def chunks():
        while True:
            yield b"x" * 65536

    with pytest.raises(BackendUnavailable) as err:
        async for _ in sse_lines(chunks(), "up"):
            pass
    assert err.value.backend == "up" and "SSE line is longer than 1048576" in err.value.reason


async def test_sse_an_endless_event_fails_naming_the_backend():
    """An event of endless short data lines fails too: its data is bounded like a line."""

    async def chunks():
        while True:
            yield b"data: x\n" * 8192

    with pytest.raises(BackendUnavailable) as err:
        async for _ in sse_events(sse_lines(chunks(), "up"), "up"):
            pass
    assert err.value.backend == "up" and "SSE event is longer than" in err.value.reason


async def _split_time(pieces: int) -> float:
    """Seconds sse_lines takes for one line of `pieces` 64-byte chunks (best of three)."""

    async def chunks():
        piece = b"x" * 64
        for _ in range(pieces):
            yield piece
        yield b"\n"

    best = math.inf
    for _ in range(3):
        start = time.perf_counter()
        lines = [line async for line in sse_lines(chunks(), "up")]
        best = min(best, time.perf_counter() - start)
        assert len(lines) == 1 and len(lines[0]) == pieces * 64
    return best


async def test_sse_a_long_unterminated_line_costs_linear_time():
    """8x the chunks of one line costs about 8x the time, not 64x (the tail is not re-split)."""
    small, large = await _split_time(1000), await _split_time(8000)
    assert large / small < 24


def test_deeply_nested_json_is_malformed_not_a_crash():
    """JSON nested beyond Python's recursion limit is a malformed event, and no error body crash."""
    with pytest.raises(BackendUnavailable, match="not a JSON object"):
        parse_json("up", "[" * 100_000)
    assert body_snippet(b'{"error": ' * 20_000).startswith('{"error"')
