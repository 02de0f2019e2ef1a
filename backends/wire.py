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
  backends/http_common.py). Interim 1xx answers are skipped; configured headers replace the
  defaults (Host, User-Agent) and a request's own replace those, by case-insensitive name.
  Connecting tries a name's addresses Happy-Eyeballs style (the next after 250 ms). No proxies,
  no HTTP/2, no compression (none is asked for).
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import time
import urllib.parse
from collections.abc import Iterable

from backends.wire_conn import (
    HIGH_WATER,
    MAX_HEADER_BYTES,
    ClosedBeforeResponse,
    ClosedMidBody,
    ConnectFailed,
    Connection,
    ConnectionReset,
    ConnectTimeout,
    PoolBusy,
    ProtocolError,
    Response,
    WireError,
)
from router.core.backend_config import checked_headers

__all__ = [
    "HIGH_WATER",
    "MAX_HEADER_BYTES",
    "ClosedBeforeResponse",
    "ClosedMidBody",
    "ConnectFailed",
    "ConnectTimeout",
    "ConnectionReset",
    "Pool",
    "PoolBusy",
    "ProtocolError",
    "Response",
    "WireError",
]


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
        fixed = {"host": authority, "user-agent": "tokenrouter"}
        fixed.update(checked_headers(headers))  # the config's replace the defaults
        self._fixed = fixed
        self._fixed_text = "".join(f"{k}: {v}\r\n" for k, v in fixed.items())
        self._idle: list[Connection] = []
        self._open = 0  # connections open or being opened
        self._waiters: collections.deque[asyncio.Future[Connection | None]] = collections.deque()
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
        try:
            own = checked_headers(headers.items())
        except ValueError as exc:
            raise WireError(str(exc)) from None
        if own.keys() & self._fixed.keys():  # a request's headers replace the pool's
            own = {**self._fixed, **own}
            fixed = ""
        else:
            fixed = self._fixed_text
        own.pop("content-length", None)
        extra = "".join(f"{k}: {v}\r\n" for k, v in own.items())
        length = f"content-length: {len(body)}\r\n" if body or method == "POST" else ""
        head = f"{method} {path} HTTP/1.1\r\n{fixed}{extra}{length}\r\n"
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

    async def _acquire(self, timeout: float) -> Connection:
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
            except BaseException as exc:
                if not waiter.done():
                    waiter.cancel()
                elif not waiter.cancelled():  # handed over as we gave up: pass it on
                    given = waiter.result()
                    if given is None:
                        self._free_slot()
                    else:
                        self._release(given, given.usable)
                if isinstance(exc, TimeoutError):
                    n = self.max_connections
                    raise PoolBusy(
                        f"all {n} connections stayed busy for {timeout:g} s (max_connections {n})"
                    ) from None
                raise
            if conn is not None:
                if conn.usable:
                    return conn
                conn.abort()  # closed since it was handed over: its slot opens a new one
        if self._closed:  # closed while this request waited
            self._free_slot()
            raise WireError("client closed")
        try:
            return await self._connect(timeout)
        except BaseException:
            self._free_slot()
            raise

    async def _connect(self, timeout: float) -> Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(min(timeout, self.connect_timeout)):
                _, conn = await loop.create_connection(
                    lambda: Connection(self),
                    self.host,
                    self.port,
                    ssl=self._ssl,
                    server_hostname=self.host if self._ssl else None,
                    happy_eyeballs_delay=0.25,  # a dead first address does not cost the timeout
                    interleave=1,
                )
        except TimeoutError:
            if timeout < self.connect_timeout:
                raise  # the caller's deadline, not the connect timeout
            raise ConnectTimeout(f"connect to {self.host}:{self.port} timed out") from None
        except ConnectionRefusedError as exc:
            raise ConnectFailed(str(exc), refused=True) from None
        except (OSError, ssl.SSLError) as exc:
            refused = "refused" in str(exc).lower()
            raise ConnectFailed(f"{type(exc).__name__}: {exc}", refused=refused) from None
        return conn

    def _release(self, conn: Connection, keep: bool) -> None:
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

    def _forget(self, conn: Connection) -> None:
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
