"""The end-of-request record (router/runtime/request_logging.py): status, log line and request
log."""

from __future__ import annotations

import asyncio
import time

import pytest
from structlog.testing import capture_logs

from router.core.errors import InvalidArgument, RequestFailed
from router.core.types import ChatMessage, Request, Usage
from router.runtime.request_logging import request_ended, status_of


class FakeRequestLog:
    def __init__(self) -> None:
        self.records: list[tuple] = []

    def record(self, request, usage, ctx, status, arrived_unix, attempts) -> None:
        self.records.append((request.request_id, status, usage.completion_tokens, len(attempts)))


REQUEST = Request("r1", "acme", (ChatMessage("user", "secret text"),), 8, 0.0)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (None, "OK"),
        (asyncio.CancelledError(), "CANCELLED"),
        (GeneratorExit(), "CANCELLED"),
        (InvalidArgument("profile", "unknown"), "INVALID_ARGUMENT"),
        (RequestFailed("UNAVAILABLE", "down"), "UNAVAILABLE"),
        (ValueError("bug"), "INTERNAL"),
    ],
)
def test_status_of(error, status):
    """A request's status is OK, CANCELLED for a cancel or close, else the error's code."""
    assert status_of(error) == status


def test_a_generate_gets_a_record_and_a_route_does_not():
    """Only a Generate with a usage is written to the request log, with its status and its
    attempts."""
    out = FakeRequestLog()
    usage = Usage(completion_tokens=3, backend="a")
    started = time.perf_counter()
    attempts = [{"backend": "a", "status": "OK"}]
    request_ended(
        "generate",
        REQUEST,
        started,
        request_log=out,
        log_content=False,
        usage=usage,
        attempts=attempts,
    )
    request_ended("route", REQUEST, started, request_log=out, log_content=False, backend="a")
    error = RequestFailed("UNAVAILABLE", "down")
    request_ended(
        "generate", REQUEST, started, request_log=out, log_content=False, usage=usage, error=error
    )
    assert out.records == [("r1", "OK", 3, 1), ("r1", "UNAVAILABLE", 3, 0)]


def test_the_log_line_has_content_only_when_asked():
    """A failure logs a warning with its code and message; content appears only with
    log_content, and a cancel is an info line."""
    started = time.perf_counter()
    with capture_logs() as logs:
        error = InvalidArgument("profile", "unknown")
        request_ended("route", REQUEST, started, request_log=None, log_content=False, error=error)
        request_ended("route", REQUEST, started, request_log=None, log_content=True, backend="a")
        cancel = asyncio.CancelledError()
        request_ended("route", REQUEST, started, request_log=None, log_content=False, error=cancel)
    failed, ok, cancelled = logs
    assert failed["log_level"] == "warning" and failed["status"] == "INVALID_ARGUMENT"
    assert failed["error"] == "profile: unknown" and "messages" not in failed
    assert ok["log_level"] == "info" and ok["backend"] == "a"
    assert ok["messages"] == [{"role": "user", "content": "secret text"}]
    assert cancelled["log_level"] == "info" and cancelled["status"] == "CANCELLED"
