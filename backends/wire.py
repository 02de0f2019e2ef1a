"""A lean HTTP/1.1 client for the backends: asyncio transports and httptools' parser (llhttp).

The token relay's hot path. Measured against httpx and aiohttp on the same SSE stream (see
docs/architecture.md, "The token relay"): httpx yields every HTTP chunk separately through several
layers (h11, httpcore, anyio) at ~1 ms of CPU per 24-chunk stream; this client hands over
everything that arrived as one `bytes` (~0.2 ms), so what an upstream sends faster than the
router relays it is coalesced for free.

* `Pool(url, ...)`: keep-alive connections to one origin (http or https), at most
  `max_connections` at once (further requests wait, within their timeout), idle ones expire
  after `keepalive_expiry` seconds, and one the server closed leaves the pool as soon as its
  end arrives (no request is sent on it). Nothing is retried: a request is sent once.
* `await pool.request(method, target, headers, body, timeout)` -> `Response` once the status
  and headers arrived; `await response.read(timeout)` returns all body bytes received so far
  (waiting for some if none), b"" at the end; `response.close()` hands the connection back when
  the body was read to its end, else closes it.
* Memory is bounded: a connection stops reading from its socket while more than
  `HIGH_WATER` bytes of body wait to be read, and at most `MAX_HEADER_BYTES` of headers.
* Failures raise `WireError` subclasses (mapped to readable backend errors by
  backends/http_common.py). No proxies, no HTTP/2, no compression (none is asked for).
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import time
import urllib.parse
from collections.abc import Iterable

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


def _lost(exc: BaseException | None, got_headers: bool) -> WireError:
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        return ConnectionReset(str(exc) or type(exc).__name__)
    detail = f"{type(exc).__name__}: {exc}" if exc is not None else "peer closed connection"
    return ClosedMidBody(detail) if got_headers else ClosedBeforeResponse(detail)


class Response:
    """One answer: `status`, `headers` (lower-case names), and the body through `read`."""

    def __init__(self, conn: _Connection) -> None:
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


class _Connection(asyncio.Protocol):
    """One keep-alive connection; at most one request at a time."""

    def __init__(self, pool: Pool) -> None:
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

    # httptools calls these on the protocol; they go to the current response.
    def on_header(self, name: bytes, value: bytes) -> None:
        if self.response is not None:
            self.response.on_header(name, value)

    def on_headers_complete(self) -> None:
        response = self.response
        if response is not None:
            h = response._raw_headers
            names = {n for n, _ in h}
            self._until_eof = "content-length" not in names and "transfer-encoding" not in names
            response.on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if self.response is not None:
            self.response.on_body(body)

    def on_message_complete(self) -> None:
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
        self._until_eof = self.keep_alive = False
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


class Pool:
    """Keep-alive HTTP/1.1 connections to the origin of `url`; see the module docstring."""

    def __init__(
        self,
        url: str,
        *,
        max_connections: int,
        connect_timeout: float,
        keepalive_expiry: float = 4.0,
        headers: Iterable[tuple[str, str]] = (),
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        self.https = parts.scheme.lower() == "https"
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.https else 80)
        self.prefix = parts.path.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = (443 if self.https else 80) == self.port
        authority = host if default and parts.port is None else f"{host}:{self.port}"
        self._ssl = (ssl_context or ssl.create_default_context()) if self.https else None
        self.max_connections = max_connections
        self.connect_timeout = connect_timeout
        self.keepalive_expiry = keepalive_expiry
        self.origin = f"{'https' if self.https else 'http'}://{authority}"
        fixed = [("host", authority), ("user-agent", "tokenrouter"), *headers]
        self._fixed = "".join(f"{k}: {v}\r\n" for k, v in fixed)
        self._idle: list[_Connection] = []
        self._open = 0  # connections open or being opened
        self._waiters: collections.deque[asyncio.Future[_Connection | None]] = collections.deque()
        self._closed = False

    def url(self, path: str) -> str:
        """The full URL of `path` (absolute, e.g. `prefix + "/models"`), for messages."""
        return f"{self.origin}{path}"

    async def request(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes = b"",
        timeout: float = 60.0,
    ) -> Response:
        """Sends a request for `path` (absolute: `prefix` is the base URL's path) and waits for
        its status and headers, at most `timeout` seconds in all."""
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        length = f"content-length: {len(body)}\r\n" if body or method == "POST" else ""
        head = f"{method} {path} HTTP/1.1\r\n{self._fixed}{extra}{length}\r\n"
        deadline = time.monotonic() + timeout
        raw = head.encode("latin-1")
        conn = await self._acquire(max(0.0, deadline - time.monotonic()))
        response = conn.send(raw, body)
        try:
            await response.headers_ready(max(0.0, deadline - time.monotonic()))
        except BaseException:
            response.close()
            raise
        return response

    async def _acquire(self, timeout: float) -> _Connection:
        if self._closed:
            raise WireError("client closed")
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if conn.usable and now - conn.idle_since <= self.keepalive_expiry:
                return conn
            conn.abort()
            self._open -= 1
        if self._open < self.max_connections:
            self._open += 1
        else:  # wait for a connection or a slot: either is handed over, counted in `_open`
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                async with asyncio.timeout(timeout):
                    conn = await waiter
            except BaseException:
                if not waiter.done():
                    waiter.cancel()
                elif not waiter.cancelled():  # handed over as we gave up: pass it on
                    given = waiter.result()
                    if given is None:
                        self._free_slot()
                    else:
                        self._release(given, given.usable)
                raise
            if conn is not None:
                if conn.usable:
                    return conn
                conn.abort()  # closed since it was handed over: its slot opens a new one
        try:
            return await self._connect(timeout)
        except BaseException:
            self._free_slot()
            raise

    async def _connect(self, timeout: float) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(min(timeout, self.connect_timeout)):
                _, conn = await loop.create_connection(
                    lambda: _Connection(self),
                    self.host,
                    self.port,
                    ssl=self._ssl,
                    server_hostname=self.host if self._ssl else None,
                )
        except TimeoutError:
            raise ConnectTimeout(f"connect to {self.host}:{self.port} timed out") from None
        except ConnectionRefusedError as exc:
            raise ConnectFailed(str(exc), refused=True) from None
        except (OSError, ssl.SSLError) as exc:
            refused = "refused" in str(exc).lower()
            raise ConnectFailed(f"{type(exc).__name__}: {exc}", refused=refused) from None
        return conn

    def _release(self, conn: _Connection, keep: bool) -> None:
        if keep and not self._closed:
            while self._waiters:
                waiter = self._waiters.popleft()
                if not waiter.done():
                    waiter.set_result(conn)
                    return
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
            return
        conn.abort()
        self._free_slot()

    def _free_slot(self) -> None:
        """A connection slot freed: it goes to the first waiter (who opens a connection on it),
        so that a request arriving before that waiter resumes cannot take it too."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._open -= 1

    def _forget(self, conn: _Connection) -> None:
        """An idle connection the server closed leaves the pool at once."""
        if conn in self._idle:
            self._idle.remove(conn)
            self._free_slot()

    async def aclose(self) -> None:
        """Closes idle connections; busy ones close when their response is done."""
        self._closed = True
        for conn in self._idle:
            conn.abort()
        self._open -= len(self._idle)
        self._idle.clear()
