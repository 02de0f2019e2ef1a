"""The wire client's pool (backends/wire.py): keep-alive reuse, the connection limit, expiry.

Real sockets on 127.0.0.1 and free ports; the servers are tests/fakes/raw_upstream.py.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from backends import wire
from backends.http_stream import get_bounded
from tests.fakes.fake_upstream import FakeUpstream
from tests.fakes.raw_upstream import RawUpstream, answer, until


async def keep_alive(server: RawUpstream, reader: Any, writer: Any) -> None:
    """Answers every request on the connection with 200 "ok"."""
    while await server.read_request(reader) is not None:
        writer.write(answer(b"ok"))


async def once(server: RawUpstream, reader: Any, writer: Any) -> None:
    """Answers one request (keep-alive, as far as the headers say), then closes the connection."""
    if await server.read_request(reader) is not None:
        writer.write(answer(b"ok"))
        await writer.drain()


def make_pool(server: RawUpstream, **options: Any) -> wire.Pool:
    options.setdefault("max_connections", 4)
    return wire.Pool(server.url("/v1"), connect_timeout=1.0, **options)


async def get(pool: wire.Pool, timeout: float = 2.0) -> bytes:
    """GETs /v1/x, reads the body to its end and hands the connection back."""
    response = await pool.request("GET", "/v1/x", {}, timeout=timeout)
    try:
        parts = []
        while data := await response.read(timeout):
            parts.append(data)
        return b"".join(parts)
    finally:
        response.close()


async def test_a_connection_is_reused_after_its_body_was_read_to_the_end(serve):
    """Three requests in a row, each read to its end, travel on one connection."""
    server = await serve(keep_alive)
    pool = make_pool(server)
    assert [await get(pool) for _ in range(3)] == [b"ok"] * 3
    assert server.accepted == 1 and len(server.heads) == 3
    assert pool._open == 1


async def test_a_response_closed_before_its_end_closes_its_connection(serve):
    """Closing an answer whose body has not ended closes its connection; the next opens anew."""

    async def handler(server: RawUpstream, reader: Any, writer: Any) -> None:
        while await server.read_request(reader) is not None:
            if len(server.heads) == 1:  # 5 of 10 bytes, the rest never comes
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhello")
            else:
                writer.write(answer(b"ok"))

    server = await serve(handler)
    pool = make_pool(server)
    response = await pool.request("GET", "/v1/x", {}, timeout=2.0)
    assert await response.read(2.0) == b"hello"
    response.close()
    assert await until(lambda: server.open == 0), "the client closed the connection"
    assert pool._open == 0
    assert await get(pool) == b"ok"
    assert server.accepted == 2


async def test_an_answer_with_connection_close_is_not_reused(serve):
    """After an answer saying `connection: close` the next request opens a new connection."""

    async def handler(server: RawUpstream, reader: Any, writer: Any) -> None:
        while await server.read_request(reader) is not None:
            writer.write(answer(b"ok", headers="connection: close\r\n"))

    server = await serve(handler)
    pool = make_pool(server)
    assert [await get(pool), await get(pool)] == [b"ok", b"ok"]
    assert server.accepted == 2


async def test_at_most_max_connections_are_open_and_a_waiter_gets_a_released_one(serve):
    """With 2 answers held open a third request waits, then takes the connection handed back."""
    server = await serve(keep_alive)
    pool = make_pool(server, max_connections=2)
    first = await pool.request("GET", "/v1/x", {}, timeout=2.0)
    second = await pool.request("GET", "/v1/x", {}, timeout=2.0)
    third = asyncio.create_task(get(pool))
    await asyncio.sleep(0.05)
    assert not third.done() and server.accepted == 2 and len(server.heads) == 2
    assert await first.read(1.0) == b"ok" and await first.read(1.0) == b""
    first.close()
    assert await asyncio.wait_for(third, 2.0) == b"ok"
    assert server.accepted == 2 and server.most_open == 2
    second.close()  # unread: its connection closes, the other one is idle
    assert pool._open == 1


async def test_a_slot_freed_by_a_closed_connection_lets_a_waiter_connect(serve):
    """A held answer closed unread frees its slot: the waiting request opens a new connection."""
    server = await serve(keep_alive)
    pool = make_pool(server, max_connections=1)
    held = await pool.request("GET", "/v1/x", {}, timeout=2.0)
    waiting = asyncio.create_task(get(pool))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    held.close()
    assert await asyncio.wait_for(waiting, 2.0) == b"ok"
    assert server.accepted == 2 and pool._open == 1


async def test_a_waiter_that_times_out_raises_and_leaves_the_pool_consistent(serve):
    """A request waiting for a slot past its timeout raises TimeoutError; the pool still works."""
    server = await serve(keep_alive)
    pool = make_pool(server, max_connections=1)
    held = await pool.request("GET", "/v1/x", {}, timeout=2.0)
    with pytest.raises(TimeoutError):
        await pool.request("GET", "/v1/x", {}, timeout=0.05)
    assert len(server.heads) == 1, "the request that gave up was never sent"
    held.close()
    assert pool._open == 0 and not pool._waiters
    assert await get(pool) == b"ok"
    assert pool._open == 1


async def test_a_slot_freed_for_a_waiter_is_not_taken_by_a_later_request(serve):
    """A slot freed while a request waits is the waiter's: one arriving just then still waits."""
    server = await serve(keep_alive)
    pool = make_pool(server, max_connections=1)
    held = await pool.request("GET", "/v1/x", {}, timeout=2.0)
    waiting = asyncio.create_task(pool.request("GET", "/v1/x", {}, timeout=2.0))
    await asyncio.sleep(0.05)
    held.close()  # unread: closes its connection and frees the slot for `waiting`
    with pytest.raises(TimeoutError):  # issued before `waiting` resumed, yet after it in line
        await pool.request("GET", "/v1/x", {}, timeout=0.2)
    second = await asyncio.wait_for(waiting, 2.0)
    assert server.most_open == 1 and pool._open == 1
    second.close()
    assert pool._open == 0


async def test_a_connection_handed_over_as_the_server_closes_it_is_not_used(serve):
    """A connection the server closed while being handed to a waiter is replaced, not written to."""
    closing = asyncio.Event()

    async def handler(server: RawUpstream, reader: Any, writer: Any) -> None:
        await server.read_request(reader)
        writer.write(answer(b"ok"))  # keep-alive, as far as the headers say
        await closing.wait()  # then the server closes this connection
        if server.accepted > 1:
            await keep_alive(server, reader, writer)

    server = await serve(handler)
    pool = make_pool(server, max_connections=1)
    held = await pool.request("GET", "/v1/x", {}, timeout=2.0)
    assert await held.read(1.0) == b"ok" and await held.read(1.0) == b""
    waiting = asyncio.create_task(get(pool, timeout=1.0))
    await asyncio.sleep(0.05)
    conn = held._conn
    assert conn.transport is not None
    closing.set()
    while not conn.transport.is_closing():  # the server's FIN arrived; connection_lost is due
        await asyncio.sleep(0)
    assert not conn.closed, "the test hands the connection over before connection_lost runs"
    held.close()
    assert await waiting == b"ok"
    assert server.accepted == 2


async def test_idle_connections_past_keepalive_expiry_are_not_reused(serve):
    """A connection idle longer than keepalive_expiry is closed and a new one is opened."""
    server = await serve(keep_alive)
    pool = make_pool(server, keepalive_expiry=0.05)
    assert await get(pool) == b"ok"
    await asyncio.sleep(0.1)
    assert await get(pool) == b"ok"
    assert server.accepted == 2
    assert await until(lambda: server.open == 1), "the expired connection was closed"
    assert await get(pool) == b"ok"  # and a fresh idle one is reused
    assert server.accepted == 2 and pool._open == 1


async def test_an_idle_connection_the_server_closed_leaves_the_pool(serve):
    """When the server closes an idle connection it leaves the pool; the next request reconnects."""
    server = await serve(once)
    pool = make_pool(server)
    assert await get(pool) == b"ok"
    assert await until(lambda: pool._open == 0), "the closed connection left the pool"
    assert await get(pool) == b"ok"
    assert server.accepted == 2


async def test_aclose_closes_idle_connections(serve):
    """aclose() closes the idle connections, and the pool takes no more requests."""
    server = await serve(keep_alive)
    pool = make_pool(server)
    assert await get(pool) == b"ok"
    assert server.open == 1
    await pool.aclose()
    assert pool._open == 0
    assert await until(lambda: server.open == 0)
    with pytest.raises(wire.WireError, match="client closed"):
        await pool.request("GET", "/v1/x", {}, timeout=1.0)


async def test_probes_with_get_bounded_share_one_connection(upstream: FakeUpstream):
    """get_bounded reads each answer to its end, so consecutive probes reuse one connection."""
    pool = wire.Pool(upstream.base_url, max_connections=2, connect_timeout=1.0)
    for _ in range(3):
        answer_ = await get_bounded(pool, "/v1/models", "b", {}, timeout=2.0)
        assert answer_.status == 200 and answer_.url == f"{upstream.base_url}/models"
    assert upstream.connections_accepted == 1
    await pool.aclose()


@pytest.mark.parametrize("reusable", [False, True], ids=["slot", "connection"])
async def test_a_waiter_timing_out_as_it_is_served_passes_it_on(serve, reusable):
    """A waiter whose timeout fires just as a slot or connection is handed to it gives it back."""
    server = await serve(keep_alive)
    pool = make_pool(server, max_connections=1)
    held = await pool.request("GET", "/v1/x", {}, timeout=2.0)
    if reusable:
        assert await held.read(1.0) == b"ok" and await held.read(1.0) == b""
    waiting = asyncio.create_task(pool.request("GET", "/v1/x", {}, timeout=0.05))
    await asyncio.sleep(0.01)
    time.sleep(0.1)  # the waiter's timeout is due, to run right after this step's next one
    await asyncio.sleep(0)
    held.close()  # hands the slot (or connection) to the waiter, whose timeout then fires
    with pytest.raises(TimeoutError):
        await waiting
    assert pool._open == (1 if reusable else 0) and not pool._waiters
    assert await get(pool, timeout=1.0) == b"ok"
    assert server.accepted == (1 if reusable else 2)
