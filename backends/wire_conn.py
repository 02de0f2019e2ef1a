"""The connection side of backends/wire.py: one keep-alive connection, its answers, the errors.

`Connection` is an asyncio protocol feeding httptools' parser; the parser's callbacks go to the
current `Response`, which buffers body bytes for `read` (pausing the socket past `HIGH_WATER`)
and wakes the one reader waiting on it. The pool that owns a connection hears of its end
through `_forget` / `_release` (backends/wire.py).
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

import httptools

HIGH_WATER = 256 * 1024  # body bytes buffered before the connection stops reading
MAX_HEADER_BYTES = 64 * 1024


class WireError(Exception):
    """A transport-level failure talking to an upstream."""


class ConnectFailed(WireError):
    """Could not open a connection; `refused` when the peer refused it."""

    def __init__(self, message: str, refused: bool = False) -> None:
        super().__init__(message)
        self.refused = refused


class ConnectTimeout(WireError):
    """Opening the connection took longer than the connect timeout."""


class ClosedBeforeResponse(WireError):
    """The connection ended before the status line and headers arrived."""


class ClosedMidBody(WireError):
    """The connection ended before the body was complete."""


class ConnectionReset(WireError):
    """The peer reset the connection (or writing to it failed)."""


class ProtocolError(WireError):
    """The upstream sent something that is not HTTP/1.1."""


class PoolBusy(WireError, TimeoutError):
    """Every connection stayed busy until the request's deadline (max_connections reached)."""


def _lost(exc: BaseException | None, got_headers: bool) -> WireError:
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        return ConnectionReset(str(exc) or type(exc).__name__)
    detail = f"{type(exc).__name__}: {exc}" if exc is not None else "peer closed connection"
    return ClosedMidBody(detail) if got_headers else ClosedBeforeResponse(detail)


class Response:
    """One answer: `status`, `headers` (lower-case names), and the body through `read`."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self.status = 0
        self.headers: dict[str, str] = {}
        self.complete = False  # the whole body arrived
        self.error: WireError | None = None
        self.got_headers = False
        self._body: list[bytes] = []
        self._buffered = 0
        self._waiter: asyncio.Future[None] | None = None
        self._header_bytes = 0
        self._raw_headers: list[tuple[str, str]] = []

    # --- parser callbacks (httptools) ---
    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value)
        if self._header_bytes > MAX_HEADER_BYTES:
            raise ProtocolError(f"response headers longer than {MAX_HEADER_BYTES} bytes")
        self._raw_headers.append((name.decode("latin-1").lower(), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        self.status = self._conn.parser.get_status_code()
        for name, value in self._raw_headers:
            self.headers[name] = f"{self.headers[name]}, {value}" if name in self.headers else value
        self.got_headers = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self._body.append(body)
        self._buffered += len(body)
        if self._buffered > HIGH_WATER:
            self._conn.pause()
        self._wake()

    def on_message_complete(self) -> None:
        self.complete = True
        self._wake()

    # --- connection events ---
    def fail(self, error: WireError) -> None:
        if not self.complete and self.error is None:
            self.error = error
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self, timeout: float) -> None:
        """Until the next parser event or failure; TimeoutError after `timeout` seconds."""
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(timeout, _expire, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    async def headers_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.got_headers:
            if self.error is not None:
                raise self.error
            await self._wait(max(0.0, deadline - time.monotonic()))

    # --- the caller's side ---
    async def read(self, timeout: float) -> bytes:
        """All body bytes received so far (waiting up to `timeout` s for some); b"" at the end."""
        while not self._body:
            if self.complete:
                return b""
            if self.error is not None:
                raise self.error
            await self._wait(timeout)
        data = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        self._body.clear()
        if self._buffered > HIGH_WATER:
            self._conn.resume()
        self._buffered = 0
        return data

    def close(self) -> None:
        """Hands the connection back for reuse if the body was read to its end, else closes it."""
        self._conn.finished(self, reusable=self.complete and not self._body)


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class Owner(Protocol):
    """What a connection tells the pool that owns it."""

    def _release(self, conn: Connection, keep: bool) -> None: ...

    def _forget(self, conn: Connection) -> None: ...


class Connection(asyncio.Protocol):
    """One keep-alive connection; at most one request at a time."""

    def __init__(self, pool: Owner) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.response: Response | None = None
        self.closed = False
        self.idle_since = 0.0
        self._paused = False
        self._head_bytes = 0  # bytes fed to the parser before the headers were complete
        self._until_eof = False  # the body ends when the connection does (no length, not chunked)
        self.keep_alive = False  # the last answer allows another request on this connection
        self._interim = False  # parsing a 1xx answer, which precedes the final one

    # httptools calls these on the protocol; they go to the current response.
    def on_header(self, name: bytes, value: bytes) -> None:
        if self.response is not None:
            self.response.on_header(name, value)

    def on_headers_complete(self) -> None:
        response = self.response
        if response is None:
            return
        if response.got_headers:  # a second answer to one request: out of step
            raise ProtocolError("more than one response to a request")
        if 100 <= self.parser.get_status_code() < 200:  # 100 Continue, 103 Early Hints...
            self._interim = True  # skipped (the final answer follows), as HTTP/1.1 says
            response._raw_headers.clear()
            return
        names = {n for n, _ in response._raw_headers}
        self._until_eof = "content-length" not in names and "transfer-encoding" not in names
        response.on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if self.response is not None:
            self.response.on_body(body)

    def on_message_complete(self) -> None:
        if self._interim:  # the end of an interim answer
            self._interim = False
            return
        self.keep_alive = self.parser.should_keep_alive()  # llhttp forgets it once complete
        if self.response is not None:
            self.response.on_message_complete()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        response = self.response
        if response is None:  # bytes while idle: the connection is out of step; drop it
            self.abort()
            return
        try:
            self.parser.feed_data(data)
            if not response.got_headers:  # httptools buffers an unfinished header line whole
                self._head_bytes += len(data)
                if self._head_bytes > MAX_HEADER_BYTES:
                    raise ProtocolError(f"response headers longer than {MAX_HEADER_BYTES} bytes")
        except ProtocolError as exc:
            response.fail(exc)
            self.abort()
        except httptools.HttpParserError as exc:
            cause = exc.__context__  # what a callback raised, e.g. headers too long
            error = cause if isinstance(cause, ProtocolError) else None
            response.fail(error or ProtocolError(f"malformed HTTP response: {exc}"))
            self.abort()

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        response = self.response
        if response is not None and not response.complete:
            if self._until_eof and response.got_headers and exc is None:
                response.on_message_complete()
            else:
                response.fail(_lost(exc, response.got_headers))
        self.pool._forget(self)

    @property
    def usable(self) -> bool:
        """Open, and not being closed (the end may have arrived before connection_lost runs)."""
        return not self.closed and self.transport is not None and not self.transport.is_closing()

    def pause(self) -> None:
        if not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self._paused and self.transport is not None and not self.closed:
            self._paused = False
            self.transport.resume_reading()

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def send(self, head: bytes, body: bytes) -> Response:
        self.response = response = Response(self)
        self.parser = httptools.HttpResponseParser(self)
        self._until_eof = self.keep_alive = self._interim = False
        self._head_bytes = 0
        assert self.transport is not None
        self.transport.write(head + body if len(body) < 65536 else head)
        if len(body) >= 65536:
            self.transport.write(body)
        return response

    def finished(self, response: Response, reusable: bool) -> None:
        if response is not self.response:
            return
        self.response = None
        self.resume()
        keep = reusable and self.usable and self.keep_alive
        if not keep:
            self.abort()
        self.pool._release(self, keep)
