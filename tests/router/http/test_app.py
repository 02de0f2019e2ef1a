"""The HTTP app on a real server: health, paths, methods, body and head limits, auth."""

from __future__ import annotations

import asyncio

import httpx

from tests.router.http.conftest import scripted_config


async def test_healthz_and_readyz_answer_on_a_serving_router(start_http) -> None:
    """/healthz says ok and /readyz says ready while a backend is healthy."""
    running = await start_http(scripted_config())
    async with httpx.AsyncClient(base_url=running.base_url) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"ready": True}


async def test_readyz_turns_503_while_draining(start_http) -> None:
    """Once the server begins to stop, /readyz answers 503 so balancers stop sending."""
    running = await start_http(scripted_config())
    running.server.draining = True
    async with httpx.AsyncClient(base_url=running.base_url) as client:
        ready = await client.get("/readyz")
    assert ready.status_code == 503 and ready.json() == {"ready": False}


async def test_unknown_path_is_404_and_wrong_method_405(start_http) -> None:
    """An unknown path gets 404 naming it; GET on a POST path gets 405 with Allow."""
    running = await start_http(scripted_config())
    async with httpx.AsyncClient(base_url=running.base_url) as client:
        missing = await client.get("/v2/nothing")
        wrong = await client.get("/v1/chat/completions")
    assert missing.status_code == 404 and "/v2/nothing" in missing.text
    assert wrong.status_code == 405 and wrong.headers["allow"] == "POST"


async def _raw(port: int, data: bytes, wait: float = 5.0) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    try:
        return await asyncio.wait_for(reader.read(65536), wait)
    finally:
        writer.close()


async def test_an_oversized_request_head_gets_431(start_http) -> None:
    """Headers past 64 KiB are refused with 431 and the connection closed, not buffered."""
    running = await start_http(scripted_config())
    head = b"GET /healthz HTTP/1.1\r\nhost: x\r\n" + b"x-pad: " + b"a" * 70_000 + b"\r\n\r\n"
    answer = await _raw(running.port, head)
    assert answer.startswith(b"HTTP/1.1 431 ")


async def test_a_silent_connection_is_closed_after_the_head_timeout(start_http) -> None:
    """A client that connects and sends no complete head gets 408 and is disconnected."""
    from router.http.protocol import HardenedProtocol

    running = await start_http(scripted_config())
    old = HardenedProtocol.head_timeout_s
    HardenedProtocol.head_timeout_s = 0.3
    try:
        answer = await _raw(running.port, b"GET /healthz HTTP/1.1\r\nhost:", wait=5.0)
    finally:
        HardenedProtocol.head_timeout_s = old
    assert answer.startswith(b"HTTP/1.1 408 ")


async def test_http_connections_have_nagle_off(start_http) -> None:
    """Accepted connections get TCP_NODELAY, so a response's head and body writes are not held
    for the client's delayed ACK (that cost ~40 ms per request)."""
    import socket

    running = await start_http(scripted_config())
    reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
    await reader.readuntil(b"\r\n\r\n")
    (conn,) = running.server.http._server.server_state.connections
    sock = conn.transport.get_extra_info("socket")
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    writer.close()
