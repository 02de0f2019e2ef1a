"""The HTTP server: uvicorn on the gRPC server's event loop, bound and stopped by the router.

uvicorn (httptools' llhttp parser, the app called directly as ASGI, no framework between) was
measured against aiohttp's server and a bare httptools protocol on a small JSON POST with
keep-alive (server CPU per request: uvicorn 72 µs, aiohttp 95 µs, bare 28 µs): the bare protocol
is cheaper but leaves keep-alive, pipelining, chunked bodies, 100-continue, flow control and
graceful shutdown to be written and proven again; uvicorn does them, and its two gaps (head size
and head time) are closed in router/http/protocol.py. It runs in the router's own loop (its
signal handling off: the router's serve() owns SIGTERM and SIGHUP), on a socket bound here, so
port 0 picks a free port and a bind failure is a ConfigError naming the setting. As one of
`serve --workers N` (router/tools/workers.py), the socket is bound with SO_REUSEPORT, so the
kernel spreads new connections over the workers, and every response names its worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Iterator, Sequence

import uvicorn

from router.api.addresses import is_unix
from router.config import ServerConfig
from router.core.errors import ConfigError
from router.http.protocol import HardenedProtocol


class _Server(uvicorn.Server):
    """uvicorn.Server that leaves signals alone and says when it is listening."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.listening.set()


def _bind(host: str, port: int, reuse_port: bool = False) -> socket.socket:
    if is_unix(host):
        raise ConfigError(
            "<server>", "server.http_host", "the HTTP face needs a TCP address (set http_host)"
        )
    host = host.strip().removeprefix("[").removesuffix("]")
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError as exc:
        raise ConfigError(
            "<server>", "server.http_port", f"cannot bind {host}:{port}: {exc.strerror or exc}"
        ) from None
    sock.setblocking(False)
    return sock


class HttpServer:
    """A listening HTTP face; `port` is the bound port."""

    def __init__(self, server: _Server, task: asyncio.Task[None], port: int) -> None:
        self._server = server
        self._task = task
        self.port = port

    @classmethod
    async def start(
        cls,
        app: object,
        host: str,
        port: int,
        cfg: ServerConfig,
        *,
        reuse_port: bool = False,
        headers: Sequence[tuple[str, str]] = (),
    ) -> HttpServer:
        """Binds `host:port` and serves `app` (an ASGI callable) until `stop`.

        `reuse_port`: bind with SO_REUSEPORT (one of several workers on the port); `headers` go
        out on every response.
        """
        sock = _bind(host, port, reuse_port)
        tls = cfg.tls
        config = uvicorn.Config(
            app,  # type: ignore[arg-type]
            http=HardenedProtocol,
            ws="none",
            lifespan="off",
            interface="asgi3",
            log_config=None,
            access_log=False,
            server_header=False,
            proxy_headers=False,
            headers=list(headers),
            limit_concurrency=cfg.http_max_connections,
            timeout_keep_alive=int(cfg.http_keep_alive_s),
            timeout_graceful_shutdown=int(cfg.grace_period_s) or None,
            ssl_keyfile=tls.key_file if tls else None,
            ssl_certfile=tls.cert_file if tls else None,
            ssl_ca_certs=tls.client_ca_file if tls else None,
            ssl_cert_reqs=ssl.CERT_REQUIRED if tls and tls.client_ca_file else ssl.CERT_NONE,
        )
        server = _Server(config)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        listening = asyncio.create_task(server.listening.wait())
        await asyncio.wait([task, listening], return_when=asyncio.FIRST_COMPLETED)
        if not server.listening.is_set():
            listening.cancel()
            sock.close()
            await task  # raises what stopped it
            raise ConfigError("<server>", "server.http_port", "the HTTP server did not start")
        return cls(server, task, sock.getsockname()[1])

    async def stop(self) -> None:
        """Stops accepting, lets running requests finish within the grace period, closes."""
        self._server.should_exit = True
        await self._task
