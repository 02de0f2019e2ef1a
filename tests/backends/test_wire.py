"""The wire client (backends/wire.py): framing, flow control, timeouts, errors, headers, TLS.

Real sockets on 127.0.0.1 (and ::1) and free ports; the servers are tests/fakes/raw_upstream.py.
The pool's keep-alive and limits are in test_wire_pool.py.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest

from backends import wire
from backends.http_common import transport_error
from tests.fakes.raw_upstream import RawUpstream, answer, until
from tests.router.api.test_server import ipv6_loopback

HEAD_CL = b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n"
HEAD_CHUNKED = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
HEAD_UNTIL_CLOSE = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\n"


def make_pool(url: str, **options: Any) -> wire.Pool:
    options.setdefault("max_connections", 4)
    return wire.Pool(url, connect_timeout=1.0, **options)


async def read_all(response: wire.Response, timeout: float = 2.0) -> bytes:
    parts = []
    while data := await response.read(timeout):
        parts.append(data)
    return b"".join(parts)


async def get(pool: wire.Pool, timeout: float = 2.0) -> bytes:
    response = await pool.request("GET", "/v1/x", {}, timeout=timeout)
    try:
        return await read_all(response, timeout)
    finally:
        response.close()


def reason(exc: wire.WireError) -> str:
    return transport_error("b", exc).reason  # type: ignore[attr-defined]


PIECES = [bytes([65 + i]) * (1000 * i + 1) for i in range(12)]  # 12 pieces, 66 kB in all


@pytest.mark.parametrize("framing", ["content-length", "chunked", "until-close"])
async def test_bodies_are_read_to_their_end_whatever_their_framing(serve, framing):
    """Content-Length, chunked and connection-close bodies arrive whole; only the last is not
    followed by a reuse of its connection."""

    async def handler(server: RawUpstream, reader: Any, writer: Any) -> None:
        while await server.read_request(reader) is not None:
            if framing == "content-length":
                writer.write(HEAD_CL % sum(map(len, PIECES)))
            else:
                writer.write(HEAD_CHUNKED if framing == "chunked" else HEAD_UNTIL_CLOSE)
            for piece in PIECES:
                frame = b"%x\r\n%s\r\n" % (len(piece), piece) if framing == "chunked" else piece
                writer.write(frame)
                await writer.drain()
                await asyncio.sleep(0.001)
            if framing == "chunked":
                writer.write(b"0\r\n\r\n")
            if framing == "until-close":
                return

    server = await serve(handler)
    pool = make_pool(server.url())
    for _ in range(2):
        response = await pool.request("GET", "/x", {}, timeout=2.0)
        assert response.status == 200
        assert await read_all(response) == b"".join(PIECES)
        assert response.complete
        response.close()
    assert server.accepted == (2 if framing == "until-close" else 1)


async def test_a_read_returns_everything_that_arrived_as_one_piece(serve):
    """Chunks that arrived while the caller was away come back from one read, joined."""
    sent = asyncio.Event()

    async def handler(server: RawUpstream, reader: Any, writer: Any) -> None:
        await server.read_request(reader)
        writer.write(HEAD_CHUNKED)
        for piece in (b"one ", b"two ", b"three"):
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
            await asyncio.sleep(0.01)
        writer.write(b"0\r\n\r\n")
        sent.set()
        await reader.read()

    server = await serve(handler)
    pool = make_pool(server.url())
    response = await pool.request("GET", "/x", {}, timeout=2.0)
    await asyncio.wait_for(sent.wait(), 2.0)
    await asyncio.sleep(0.05)
    assert await response.read(1.0) == b"one two three"
    assert await response.read(1.0) == b""
    response.close()


async def test_reading_pauses_above_high_water_and_resumes_after_a_read(serve):
    """More than HIGH_WATER unread bytes stop the socket's reading (the server's writes block);
    a read resumes it and the whole body still arrives."""
    total = 8 << 20
    progress = {"sent": 0}

    async def handler(server: RawUpstream, reader: Any, writer: Any) -> None:
        await server.read_request(reader)
        writer.write(HEAD_CL % total)
        piece = b"z" * 65536
        while progress["sent"] < total:
            writer.write(piece)
            await writer.drain()
            progress["sent"] += len(piece)
        await reader.read()

    server = await serve(handler)
    pool = make_pool(server.url())
    response = await pool.request("GET", "/x", {}, timeout=2.0)
    conn = response._conn
    assert conn.transport is not None
    assert await until(lambda: response._buffered > wire.HIGH_WATER)
    await asyncio.sleep(0.2)
    buffered, sent = response._buffered, progress["sent"]
    assert not conn.transport.is_reading()
    assert buffered <= wire.HIGH_WATER + 256 * 1024, "at most one socket read past the mark"
    await asyncio.sleep(0.1)
    assert (response._buffered, progress["sent"]) == (buffered, sent), "nothing moves"
    assert sent < total, "the server is blocked writing"
    first = await response.read(1.0)
    assert len(first) == buffered and conn.transport.is_reading()
    assert len(first) + len(await read_all(response)) == total
    response.close()


async def test_timeouts_raise_timeout_error(serve):
    """A read with nothing arriving and a request whose headers never come raise TimeoutError."""

    async def handler(server: RawUpstream, reader: Any, writer: Any) -> None:
        await server.read_request(reader)
        writer.write((HEAD_CL % 10) + b"abc")  # 7 bytes never come
        await server.read_request(reader)  # (the next connection's request is never answered)
        await reader.read()

    server = await serve(handler)
    pool = make_pool(server.url())
    response = await pool.request("GET", "/x", {}, timeout=2.0)
    assert await response.read(1.0) == b"abc"
    with pytest.raises(TimeoutError):
        await response.read(0.05)
    response.close()
    assert pool._open == 0
    server.handler = lambda server, reader, writer: reader.read()  # reads, never answers
    with pytest.raises(TimeoutError):
        await pool.request("GET", "/x", {}, timeout=0.05)
    assert pool._open == 0


async def test_connect_refused_raises_connect_failed_refused():
    """A closed port gives ConnectFailed with refused=True, reported as "connection refused"."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pool = make_pool(f"http://127.0.0.1:{port}")
    with pytest.raises(wire.ConnectFailed) as caught:
        await pool.request("GET", "/x", {}, timeout=1.0)
    assert caught.value.refused and reason(caught.value) == "connection refused"
    assert pool._open == 0


async def hang_up_before_answering(server: RawUpstream, reader: Any, writer: Any) -> None:
    await server.read_request(reader)


async def hang_up_mid_body(server: RawUpstream, reader: Any, writer: Any) -> None:
    await server.read_request(reader)
    writer.write((HEAD_CL % 100) + b"only ten b")
    await writer.drain()


async def hang_up_mid_chunk(server: RawUpstream, reader: Any, writer: Any) -> None:
    await server.read_request(reader)
    writer.write(HEAD_CHUNKED + b"a\r\nonly")
    await writer.drain()


async def garbage(server: RawUpstream, reader: Any, writer: Any) -> None:
    await server.read_request(reader)
    writer.write(b"SMTP READY\r\n\r\n")
    await reader.read()


async def bad_chunk(server: RawUpstream, reader: Any, writer: Any) -> None:
    await server.read_request(reader)
    writer.write(HEAD_CHUNKED + b"zz\r\nnope\r\n")
    await reader.read()


async def many_headers(server: RawUpstream, reader: Any, writer: Any) -> None:
    await server.read_request(reader)
    lines = "".join(f"x-h{i}: {'a' * 1000}\r\n" for i in range(wire.MAX_HEADER_BYTES // 1000 + 2))
    writer.write(f"HTTP/1.1 200 OK\r\n{lines}content-length: 0\r\n\r\n".encode())
    await reader.read()


async def endless_header(server: RawUpstream, reader: Any, writer: Any) -> None:
    await server.read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nx-big: ")
    for _ in range(64):  # 4 MiB of one header value, never ended
        writer.write(b"a" * 65536)
        await writer.drain()
    await reader.read()


async def reset_mid_body(server: RawUpstream, reader: Any, writer: Any) -> None:
    await server.read_request(reader)
    writer.write((HEAD_CL % 100) + b"part")
    await writer.drain()
    await asyncio.sleep(0.05)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()  # linger 0: the close sends a RST


@pytest.mark.parametrize(
    ("handler", "error", "prefix", "match"),
    [
        (hang_up_before_answering, wire.ClosedBeforeResponse, "connection closed before", None),
        (hang_up_mid_body, wire.ClosedMidBody, "stream closed before completion", None),
        (hang_up_mid_chunk, wire.ClosedMidBody, "stream closed before completion", None),
        (reset_mid_body, wire.ConnectionReset, "connection reset", None),
        (garbage, wire.ProtocolError, "malformed response: ", "malformed HTTP"),
        (bad_chunk, wire.ProtocolError, "malformed response: ", "malformed HTTP"),
        (many_headers, wire.ProtocolError, "malformed response: ", "longer than"),
        (endless_header, wire.ProtocolError, "malformed response: ", "longer than"),
    ],
    ids=lambda v: getattr(v, "__name__", None),
)
async def test_each_failure_raises_its_wire_error(serve, handler, error, prefix, match):
    """Each way an upstream fails raises its WireError subclass (from the request or a read),
    which transport_error turns into a readable reason; the connection leaves the pool."""
    server = await serve(handler)
    pool = make_pool(server.url())
    with pytest.raises(error, match=match) as caught:
        response = await pool.request("GET", "/x", {}, timeout=3.0)
        try:
            await read_all(response, 3.0)
        finally:
            response.close()
    assert reason(caught.value).startswith(prefix)
    assert await until(lambda: pool._open == 0)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (wire.ConnectTimeout("connect to h:1 timed out"), "connect timeout"),
        (wire.ConnectFailed("refused", refused=True), "connection refused"),
        (wire.ConnectFailed("SSLError: bad cert"), "cannot connect (SSLError: bad cert)"),
        (wire.ClosedBeforeResponse("eof"), "connection closed before a response (eof)"),
        (wire.ClosedMidBody("eof"), "stream closed before completion (eof)"),
        (wire.ConnectionReset("rst"), "connection reset (rst)"),
        (wire.ProtocolError("junk"), "malformed response: junk"),
        (wire.WireError("client closed"), "WireError: client closed"),
        (wire.ProtocolError("sent sk-secret back"), "malformed response: sent <redacted> back"),
    ],
)
def test_transport_error_maps_each_wire_error_to_a_readable_reason(error, expected):
    """transport_error names each WireError's cause in words, without the API key."""
    mapped = transport_error("b", error, secret="sk-secret")
    assert mapped.reason == expected  # type: ignore[attr-defined]
    assert str(mapped) == f"backend b: {expected}"


@pytest.mark.parametrize("size", [7, 100_000], ids=["small", "large"])
async def test_request_head_and_body_are_sent_as_given(serve, size):
    """The request line, Host (with its port), user-agent, the pool's and the call's headers,
    Content-Length and the body reach the server; the answer's headers come lower-cased."""

    async def handler(server: RawUpstream, reader: Any, writer: Any) -> None:
        while await server.read_request(reader) is not None:
            writer.write(answer(b"{}", 201, "X-Multi: a\r\nx-multi: b\r\n"))

    server = await serve(handler)
    pool = make_pool(server.url("/v1/"), headers=[("authorization", "Bearer k")])
    assert pool.url("/v1/chat") == f"http://127.0.0.1:{server.port}/v1/chat"
    body = b"x" * size
    response = await pool.request("POST", "/v1/chat", {"x-extra": "1"}, body, timeout=2.0)
    assert response.status == 201 and response.headers["x-multi"] == "a, b"
    assert await read_all(response) == b"{}"
    response.close()
    assert await get(pool) == b"{}"
    lines = server.heads[0].decode().split("\r\n")
    assert lines[0] == "POST /v1/chat HTTP/1.1"
    fields = dict(line.split(": ", 1) for line in lines[1:] if line)
    assert fields == {
        "host": f"127.0.0.1:{server.port}",
        "user-agent": "tokenrouter",
        "authorization": "Bearer k",
        "x-extra": "1",
        "content-length": str(size),
    }
    assert server.bodies[0] == body
    assert "content-length" not in server.heads[1].decode(), "a GET without a body has none"


def test_origin_and_host_for_default_and_explicit_ports():
    """A default port is left out of the origin and Host; an explicit one and IPv6 brackets stay."""
    cases = [
        ("https://api.example.com/v1/", "https://api.example.com", "api.example.com"),
        ("http://example.com", "http://example.com", "example.com"),
        ("http://example.com:8000/v1", "http://example.com:8000", "example.com:8000"),
        ("http://[::1]:8080/v1", "http://[::1]:8080", "[::1]:8080"),
    ]
    for url, origin, host in cases:
        pool = make_pool(url)
        assert pool.origin == origin and pool.url("/v1/models") == f"{origin}/v1/models"
        assert pool._fixed["host"] == host
    assert make_pool("https://a.example").port == 443 and make_pool("http://a.example").port == 80


@ipv6_loopback
async def test_an_ipv6_literal_host_works(serve):
    """A pool on http://[::1]:PORT connects over IPv6 and sends Host: [::1]:PORT."""

    async def handler(server: RawUpstream, reader: Any, writer: Any) -> None:
        while await server.read_request(reader) is not None:
            writer.write(answer(b"v6"))

    server = await serve(handler, host="::1")
    pool = make_pool(server.url("/v1"))
    assert pool.url("/v1/x") == f"http://[::1]:{server.port}/v1/x"
    assert await get(pool) == b"v6"
    assert f"host: [::1]:{server.port}\r\n".encode() in server.heads[0]


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway self-signed certificate for 127.0.0.1 and localhost (cert.pem, key.pem)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl CLI")
    folder = tmp_path_factory.mktemp("wirecert")
    subprocess.run(
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -days 2"
        " -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost",
        shell=True,
        cwd=folder,
        check=True,
        capture_output=True,
    )
    return folder


async def test_https_with_a_given_ssl_context(serve, cert):
    """Over TLS with the pool's ssl_context trusting the certificate, answers arrive and the
    connection is reused; without it the certificate is refused as ConnectFailed."""
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert / "cert.pem", cert / "key.pem")

    async def handler(server: RawUpstream, reader: Any, writer: Any) -> None:
        while await server.read_request(reader) is not None:
            writer.write(answer(b"secure"))

    server = await serve(handler, ssl=server_ctx)
    url = server.url("/v1", scheme="https")
    client_ctx = ssl.create_default_context(cafile=str(cert / "cert.pem"))
    pool = make_pool(url, ssl_context=client_ctx)
    assert pool.origin == f"https://127.0.0.1:{server.port}"
    assert [await get(pool), await get(pool)] == [b"secure", b"secure"]
    assert server.accepted == 1
    with pytest.raises(wire.ConnectFailed) as caught:
        await make_pool(url).request("GET", "/v1/x", {}, timeout=2.0)
    assert not caught.value.refused and reason(caught.value).startswith("cannot connect (")
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)
