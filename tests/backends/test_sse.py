"""The SSE parser over bytes as they arrive (backends/sse.py)."""

from __future__ import annotations

import time

import pytest

from backends.sse import SseParser
from router.core.errors import BackendUnavailable


def events_of(*parts: bytes) -> list[tuple[str, str]]:
    """The events one parser makes of a stream delivered as `parts`."""
    parser = SseParser("up")
    return [event for part in parts for event in parser.feed(part)]


def data_of(*parts: bytes) -> list[str]:
    return [data for _, data in events_of(*parts)]


def test_one_read_with_several_events_returns_them_all():
    """Every event a read completes comes back from one feed, in order; the rest waits."""
    parser = SseParser("up")
    assert parser.feed(b"data: 1\n\ndata: 2\n\nevent: x\ndata: 3\n\ndata: 4") == [
        ("message", "1"),
        ("message", "2"),
        ("x", "3"),
    ]
    assert parser.feed(b"\n\n") == [("message", "4")]


def test_splits_only_on_sse_line_ends():
    """CRLF split across reads, comments and U+2028 inside data are handled per the SSE spec."""
    parts = [b": hi\r", b"\ndata: a\xe2\x80", b"\xa8b\r\n", b"\r\nevent: x\ndata: 1\n", b"\n"]
    assert events_of(*parts) == [("message", "a\u2028b"), ("x", "1")]


def test_line_ends_split_across_reads():
    """CRLF split across reads, CR at a read's end, bare CR and LF each end exactly one line."""
    assert data_of(b"data: a\r", b"\n\r", b"\ndata: b\r", b"\r") == ["a", "b"]
    assert data_of(b"data: a\r", b"", b"\n", b"\r\n") == ["a"]
    assert data_of(b"data: a\r\r", b"data: b\n\n") == ["a", "b"]
    assert data_of(b"data: a\n", b"data: b\n", b"\n") == ["a\nb"]
    assert data_of(b"data: a\r", b"\n", b"\n") == ["a"]  # a CRLF's LF, then a blank line


def test_multibyte_characters_split_across_reads():
    """A UTF-8 character cut between reads (even byte by byte) is decoded once, whole."""
    text = "data: d\u00e9j\u00e0 \u20ac \U0001f600\n\n".encode()
    assert data_of(*(text[i : i + 1] for i in range(len(text)))) == [
        "d\u00e9j\u00e0 \u20ac \U0001f600"
    ]
    assert data_of(b"data: \xe2\x82\n\n") == ["\ufffd"]  # a broken character is replaced


def test_an_event_of_many_reads_is_joined_whole():
    """An event delivered in many pieces comes out as one event, then the next one."""
    parts = [b"data: "] + [b"%d," % i for i in range(3000)] + [b"\n\ndata: next\n\n"]
    assert data_of(*parts) == ["".join(f"{i}," for i in range(3000)), "next"]


def test_leading_bom_is_dropped():
    """A leading U+FEFF is ignored, also when its bytes are split; a later one is not."""
    bom = "\ufeff".encode()
    assert data_of(bom + b"data: a\n\n") == ["a"]
    assert data_of(bom[:1], bom[1:2], bom[2:] + b"data: a\n\n") == ["a"]
    assert events_of(bom, bom + b"data: x\n\n") == []  # "\ufeffdata" is an unknown field
    assert data_of(b"data: a\n\n" + bom + b"data: b\n\n") == ["a"]


def test_done_ends_the_stream():
    """`data: [DONE]` is returned, sets `done`, and what follows is ignored."""
    parser = SseParser("up")
    assert parser.feed(b"data: 1\n\ndata: [DONE]\n\ndata: 2\n\n") == [
        ("message", "1"),
        ("message", "[DONE]"),
    ]
    assert parser.done and parser.feed(b"data: 3\n\n") == []


def test_an_endless_line_fails_naming_the_backend():
    """A line that never ends fails with BackendUnavailable once it passes the limit."""
    parser = SseParser("up")
    with pytest.raises(BackendUnavailable) as err:
        while True:
            parser.feed(b"x" * 65536)
    assert err.value.backend == "up" and "SSE line is longer than 1048576" in err.value.reason


def test_an_endless_event_fails_naming_the_backend():
    """An event of endless short data lines fails too: an event is bounded like a line."""
    parser = SseParser("up")
    with pytest.raises(BackendUnavailable) as err:
        while True:
            parser.feed(b"data: x\n" * 8192)
    assert err.value.backend == "up" and "SSE event is longer than" in err.value.reason


def _split_time(pieces: int) -> float:
    """Seconds one event of `pieces` 64-byte reads takes to parse (best of three)."""
    piece = b"x" * 64
    best = float("inf")
    for _ in range(3):
        parser = SseParser("up")
        start = time.perf_counter()
        parser.feed(b"data: ")
        for _ in range(pieces):
            parser.feed(piece)
        events = parser.feed(b"\n\n")
        best = min(best, time.perf_counter() - start)
        assert len(events) == 1 and len(events[0][1]) == pieces * 64
    return best


def test_a_long_unterminated_event_costs_linear_time():
    """8x the reads of one event costs about 8x the time, not 64x (the kept part is not
    re-scanned or re-joined on every read)."""
    small, large = _split_time(1000), _split_time(8000)
    assert large / small < 24
