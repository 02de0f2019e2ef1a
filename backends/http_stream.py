"""Requests on the lean HTTP client (backends/wire.py): the pool, bounded GETs, event streams.

Errors are mapped to backend errors here (backends/http_common.py): a transport failure is
`BackendUnavailable` with a readable reason, a non-2xx answer what `status_error` makes of it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from backends import wire
from backends.http_common import TokenClock, status_error, transport_error
from backends.sse import SseParser
from router.core.backend_config import HttpBackendCommon
from router.core.errors import BackendUnavailable, ResourceExhausted

ERROR_BODY_BYTES = 16_384  # of a non-2xx answer, read for its message
MAX_PROBE_BYTES = 8 << 20  # the body of a probe's answer (vLLM /metrics, /slots, /models)


def make_client(config: HttpBackendCommon) -> wire.Pool:
    """A keep-alive pool of `max_connections` connections to the backend's base URL.

    Idle connections expire before the common 5 s server keep-alive (uvicorn, so vLLM and
    llama-cpp-python) closes them, so a request rarely lands on a connection being closed.
    There is no read timeout at this level: `TokenClock` bounds every wait instead.
    """
    return wire.Pool(
        config.base_url,
        max_connections=config.max_connections,
        connect_timeout=config.timeouts.connect_s,
        keepalive_expiry=4.0,
        headers=config.headers.items(),
    )


@dataclass(frozen=True, slots=True)
class Answer:
    """A whole (bounded) answer to a GET."""

    url: str
    status: int
    headers: dict[str, str]
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")


async def read_body(response: wire.Response, limit: int, timeout: float) -> tuple[bytes, bool]:
    """Up to `limit` bytes of the body within `timeout` s; (bytes, whether it ended within)."""
    deadline = time.monotonic() + timeout
    parts, size = [], 0
    while size < limit:
        data = await response.read(max(0.0, deadline - time.monotonic()))
        if not data:
            return b"".join(parts), True
        parts.append(data)
        size += len(data)
    return b"".join(parts)[:limit], False


async def get_bounded(
    pool: wire.Pool,
    path: str,
    backend: str,
    headers: dict[str, str],
    timeout: float,
    limit: int = MAX_PROBE_BYTES,
) -> Answer:
    """GETs `path` with its body read in full within `timeout` s, but never more than `limit`
    bytes of it: a longer body raises BackendUnavailable naming `backend` (the connection is
    dropped). Transport failures and timeouts are the caller's to map."""
    deadline = time.monotonic() + timeout
    response = await pool.request("GET", path, headers, timeout=timeout)
    try:
        body, ended = await read_body(response, limit + 1, max(0.0, deadline - time.monotonic()))
    finally:
        response.close()
    url = pool.url(path)
    if not ended or len(body) > limit:
        raise BackendUnavailable(backend, f"answer of {url} is larger than {limit} bytes")
    return Answer(url, response.status, response.headers, body)


@contextlib.asynccontextmanager
async def open_stream(
    pool: wire.Pool,
    path: str,
    headers: dict[str, str],
    body: bytes,
    clock: TokenClock,
    secret: str | None = None,
) -> AsyncIterator[EventStream]:
    """POSTs `body` to `path` and yields the 2xx answer's events; closes it however it exits.

    Connecting and waiting for the headers count against the first-token deadline; a non-2xx
    answer raises `status_error` of its status and the first 16 KiB of its body.
    """
    backend = clock.backend
    headers = {"content-type": "application/json", "accept": "text/event-stream", **headers}
    try:
        response = await pool.request("POST", path, headers, body, clock.remaining())
    except wire.PoolBusy as exc:  # the router's own limit, not the backend's fault
        raise ResourceExhausted(f"backend {backend}: {exc}") from None
    except TimeoutError:
        raise clock.expired() from None
    except wire.WireError as exc:
        raise transport_error(backend, exc, secret) from None
    try:
        if not 200 <= response.status < 300:
            error_body = b""
            with contextlib.suppress(wire.WireError, TimeoutError):
                wait = min(clock.remaining(), 5.0)
                error_body, _ = await read_body(response, ERROR_BODY_BYTES, wait)
            raise status_error(backend, response.status, response.headers, error_body, secret)
        yield EventStream(response, clock, secret)
    finally:
        response.close()


class EventStream:
    """The SSE events of a streaming answer, a batch per read, within the clock's deadlines.

    `await events.batch()` returns every event that the bytes received so far complete (waiting
    for bytes if none are there: what arrived while the caller was busy comes as one batch), or
    None at the end of the body. After the last expected event (`[DONE]`, or the protocol's
    own end) call `drain()`, so that the rest of the body is read and the connection goes back
    to the keep-alive pool (an answer closed unread closes its connection).
    """

    def __init__(self, response: wire.Response, clock: TokenClock, secret: str | None = None):
        self.clock = clock
        self.secret = secret
        self.parser = SseParser(clock.backend)
        self._response = response

    async def batch(self) -> list[tuple[str, str]] | None:
        """The (event, data) pairs that arrived; None at the end of the body."""
        parser = self.parser
        while True:
            left = self.clock.remaining()
            if left <= 0:
                raise self.clock.expired()
            try:
                data = await self._response.read(left)
            except TimeoutError:
                raise self.clock.expired() from None
            except wire.WireError as exc:
                raise self._error(exc) from None
            if not data:
                return None
            events = parser.feed(data)
            if events or parser.done:
                return events

    def _error(self, exc: wire.WireError) -> BackendUnavailable:
        if isinstance(exc, wire.ClosedBeforeResponse):  # headers came: it is mid-stream
            exc = wire.ClosedMidBody(str(exc))
        return transport_error(self.clock.backend, exc, self.secret)  # type: ignore[return-value]

    async def drain(self, limit_s: float = 1.0) -> None:
        """Reads the rest of a completed stream (at most `limit_s` seconds), ignoring it."""
        wait = min(limit_s, self.clock.remaining())
        with contextlib.suppress(wire.WireError, TimeoutError):
            await read_body(self._response, 1 << 20, wait)
