"""A raw HTTP/1.1 server for the wire client's tests: each connection runs a handler coroutine.

    server = await RawUpstream.start(handler)     # 127.0.0.1 (or host=), a free port, ssl=
    async def handler(server, reader, writer):    # writes whatever bytes the test needs
        while await server.read_request(reader) is not None:
            writer.write(answer(b"ok"))
    await server.close()

Counters: `accepted` (connections), `open` and `most_open` (at once), `heads` (every request
head received, raw bytes), `bodies` (their Content-Length bodies).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable

Handler = Callable[["RawUpstream", asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def answer(body: bytes, status: int = 200, headers: str = "") -> bytes:
    """A complete response with a Content-Length body; `headers` are extra "name: value\r\n"."""
    head = f"HTTP/1.1 {status} OK\r\ncontent-length: {len(body)}\r\n{headers}\r\n"
    return head.encode() + body


class RawUpstream:
    """See the module docstring."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.host, self.port = "127.0.0.1", 0
        self.accepted = self.open = self.most_open = 0
        self.heads: list[bytes] = []
        self.bodies: list[bytes] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @classmethod
    async def start(
        cls, handler: Handler, host: str = "127.0.0.1", ssl: ssl.SSLContext | None = None
    ) -> RawUpstream:
        server = cls(handler)
        server.host = host
        server._server = await asyncio.start_server(server._serve, host, 0, ssl=ssl)
        server.port = server._server.sockets[0].getsockname()[1]
        return server

    def url(self, path: str = "", scheme: str = "http") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}{path}"

    async def read_request(self, reader: asyncio.StreamReader) -> bytes | None:
        """The next request's head (its body is read too), or None when the client hung up."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        self.heads.append(head)
        self.bodies.append(await reader.readexactly(length))
        return head

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        self._writers.add(writer)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            with contextlib.suppress(
                ConnectionError, ssl.SSLError, asyncio.IncompleteReadError, asyncio.CancelledError
            ):  # a cancelled handler ends quietly (asyncio logs a handler task's exception)
                await self.handler(self, reader, writer)
        finally:
            self.open -= 1
            self._writers.discard(writer)
            self._tasks.discard(task)
            writer.close()

    async def close(self) -> None:
        """Stops listening and ends every connection and handler."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=2.0)


async def until(condition: Callable[[], bool], timeout: float = 2.0) -> bool:
    """Polls `condition` every 5 ms until true or `timeout` seconds pass; its last value."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not condition() and loop.time() < end:
        await asyncio.sleep(0.005)
    return condition()
