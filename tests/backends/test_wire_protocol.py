"""The wire client's HTTP/1.1 details: interim (1xx) answers, header merging and checks, and
connecting past a dead first address (backends/wire.py, backends/wire_conn.py)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any

import pydantic
import pytest

from backends import wire
from backends.openai_compat import OpenAIConfig
from tests.backends.test_wire import get, make_pool, read_all
from tests.fakes.raw_upstream import RawUpstream, answer

INTERIM = (
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>; rel=preload\r\n\r\n"
)


@pytest.mark.parametrize("split", [False, True], ids=["one-read", "separate-reads"])
async def test_interim_answers_are_skipped_and_keep_the_connection_in_step(serve, split):
    """100 Continue and 103 Early Hints before the final answer are skipped, whether they come
    in the same read or apart, and the next request on the connection gets its own answer."""
    count = 0

    async def handler(server: RawUpstream, reader: Any, writer: Any) -> None:
        nonlocal count
        while await server.read_request(reader) is not None:
            count += 1
            final = answer(b"answer-%d" % count, headers=f"x-n: {count}\r\n")
            if split:
                writer.write(INTERIM)
                await writer.drain()
                await asyncio.sleep(0.01)
                writer.write(final)
            else:
                writer.write(INTERIM + final)

    server = await serve(handler)
    pool = make_pool(server.url(), max_connections=1)
    for n in (1, 2, 3):
        response = await pool.request("GET", "/x", {}, timeout=2.0)
        assert response.status == 200 and response.headers["x-n"] == str(n)
        assert "link" not in response.headers
        assert await read_all(response) == b"answer-%d" % n
        response.close()
    assert server.accepted == 1


async def test_a_second_final_answer_to_one_request_drops_the_connection(serve):
    """An upstream that answers one request twice is out of step: the first answer is read
    whole and alone, the connection is not reused, and the next request gets its own answer."""

    async def handler(server: RawUpstream, reader: Any, writer: Any) -> None:
        while await server.read_request(reader) is not None:
            writer.write(answer(b"one") + answer(b"two"))

    server = await serve(handler)
    pool = make_pool(server.url(), max_connections=1)
    assert await get(pool) == b"one"
    assert await get(pool) == b"one"
    assert server.accepted == 2


async def test_configured_and_request_headers_replace_defaults_case_insensitively(serve):
    """A configured Host or User-Agent replaces the default one, a request's header replaces a
    configured one, and every header is sent once."""

    async def handler(server: RawUpstream, reader: Any, writer: Any) -> None:
        while await server.read_request(reader) is not None:
            writer.write(answer(b"ok"))

    server = await serve(handler)
    headers = [("Host", "llm.internal"), ("User-Agent", "corp/1"), ("Content-Type", "text/x")]
    pool = make_pool(server.url(), headers=headers)
    response = await pool.request("POST", "/x", {"content-type": "application/json"}, b"{}", 2.0)
    await read_all(response)
    response.close()
    lines = server.heads[-1].decode().lower().split("\r\n")
    names = [line.split(":", 1)[0] for line in lines[1:] if line]
    assert len(names) == len(set(names)), lines
    assert "host: llm.internal" in lines and "user-agent: corp/1" in lines
    assert "content-type: application/json" in lines and "content-length: 2" in lines


@pytest.mark.parametrize(
    "header", [("X-Bad", "a\r\nInjected: 1"), ("Bad Name", "v"), ("X-Euro", "\u20ac")]
)
async def test_unsendable_headers_are_refused(header):
    """A header that could smuggle another one or cannot be sent is refused: in the config
    with a validation error, and per request with a WireError (nothing is sent)."""
    with pytest.raises(pydantic.ValidationError, match="header"):
        OpenAIConfig(
            type="openai", model="m", base_url="http://127.0.0.1:9/v1", headers=dict([header])
        )
    pool = make_pool("http://127.0.0.1:9")
    with pytest.raises(wire.WireError, match="header"):
        await pool.request("GET", "/x", dict([header]), timeout=1.0)


async def test_a_dead_first_address_does_not_cost_the_connect_timeout(serve, monkeypatch):
    """When the first address a name resolves to never answers (its SYNs are dropped), the next
    one is tried after a quarter second instead of failing with a connect timeout."""
    server = await serve(lambda s, r, w: s.read_request(r))
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead.listen(0)  # a full accept queue drops further SYNs: connects to it hang
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(dead.getsockname())
        fillers.append(filler)
    loop = asyncio.get_running_loop()
    live = ("127.0.0.1", server.port)

    async def resolve(host: Any, port: Any, **kwargs: Any) -> list[Any]:
        tcp = (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "")
        return [(*tcp, dead.getsockname()), (*tcp, live)]

    monkeypatch.setattr(loop, "getaddrinfo", resolve)
    pool = wire.Pool("http://dual.example:1", max_connections=1, connect_timeout=3.0)
    started = loop.time()
    conn = await pool._acquire(3.0)
    assert conn.usable and loop.time() - started < 1.5
    conn.abort()
    for s in (dead, *fillers):
        s.close()
