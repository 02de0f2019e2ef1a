"""uvicorn's httptools protocol with the two limits it lacks: header size and header time.

uvicorn bounds idle keep-alive connections (`timeout_keep_alive`) and concurrency
(`limit_concurrency`) but not the request head: llhttp accepts headers without end, and a
connection that sends nothing, or a head a byte at a time, is kept open forever. Here the request
line and headers together may take at most `max_head_bytes` (431 beyond) and must be complete
within `head_timeout_s` of the connection opening or of the previous response ending (408 and
close otherwise). Bodies are bounded by the app (router/http/app.py), which reads them itself.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD_BYTES = 64 * 1024
HEAD_TIMEOUT_S = 10.0


def _refuse(transport: asyncio.BaseTransport, status: bytes, message: bytes) -> None:
    if transport.is_closing():
        return
    transport.write(  # type: ignore[attr-defined]
        b"HTTP/1.1 " + status + b"\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"content-length: "
        + str(len(message)).encode()
        + b"\r\nconnection: close\r\n\r\n"
        + message
    )
    transport.close()


class HardenedProtocol(HttpToolsProtocol):
    """HttpToolsProtocol plus the head limits (see the module docstring)."""

    max_head_bytes = MAX_HEAD_BYTES
    head_timeout_s = HEAD_TIMEOUT_S

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._head_timer: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        self._disarm()
        self._head_timer = self.loop.call_later(self.head_timeout_s, self._head_timed_out)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.cycle is None or self.cycle.response_complete:  # between requests, not in one
            _refuse(self.transport, b"408 Request Timeout", b"request head not received in time")

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            # A response head and body are separate writes: without this, Nagle holds the body
            # until the client's delayed ACK (~40 ms) comes back.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        if self._head_timer is None:
            self._arm()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def _count(self, n: int) -> None:
        self._head_bytes += n
        if self._head_bytes > self.max_head_bytes:
            _refuse(
                self.transport,
                b"431 Request Header Fields Too Large",
                f"request line and headers exceed {self.max_head_bytes} bytes".encode(),
            )
            raise _Refused

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return  # refused: what follows the refused head is not parsed
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._unsupported_upgrade_warning()  # websockets are off
        except httptools.HttpParserError as exc:
            if not isinstance(exc.__context__, _Refused):
                self.send_400_response("Invalid HTTP request received.")

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a refused request."""
