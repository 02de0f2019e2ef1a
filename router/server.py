"""The gRPC server: TokenRouter, health checking, reflection and graceful shutdown."""

from __future__ import annotations

import asyncio
import signal

import grpc
import structlog
from grpc_health.v1 import health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from router import health
from router.api import router_pb2, router_pb2_grpc
from router.config import LoadedConfig
from router.engine import Router
from router.service import TokenRouterService

SERVICE_NAME = router_pb2.DESCRIPTOR.services_by_name["TokenRouter"].full_name
log = structlog.get_logger("tokenrouter")


class RouterServer:
    """A running router: its core, its gRPC server and the port it listens on."""

    def __init__(
        self, router: Router, server: grpc.aio.Server, health: health.HealthService, port: int
    ) -> None:
        self.router = router
        self.server = server
        self.health = health
        self.port = port

    @classmethod
    async def start(
        cls, loaded: LoadedConfig, host: str | None = None, port: int | None = None
    ) -> RouterServer:
        """Loads the backends, binds (port 0 picks a free one) and starts serving."""
        router = await Router.create(loaded)
        server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        router_pb2_grpc.add_TokenRouterServicer_to_server(TokenRouterService(router), server)
        health_servicer = health.HealthService()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        reflection.enable_server_reflection(
            [SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME], server
        )
        cfg = loaded.config.server
        address = f"{host or cfg.host}:{cfg.port if port is None else port}"
        bound = server.add_insecure_port(address)
        await server.start()
        for name in ("", SERVICE_NAME):
            await health_servicer.set(name, health.SERVING)
        log.info(
            "serving",
            address=address,
            port=bound,
            config=loaded.source,
            config_version=loaded.version,
            backends=list(router.backends),
        )
        return cls(router, server, health_servicer, bound)

    async def stop(self, grace: float | None = None) -> None:
        """Goes NOT_SERVING, refuses new calls, lets in-flight ones finish within `grace` s."""
        grace = self.router.config.server.grace_period_s if grace is None else grace
        await self.health.shutdown()
        log.info("shutting down", grace_period_s=grace)
        await self.server.stop(grace)
        await self.router.aclose()
        log.info("stopped")


async def serve(loaded: LoadedConfig, host: str | None = None, port: int | None = None) -> None:
    """Runs the server until SIGTERM or SIGINT, then shuts down gracefully."""
    server = await RouterServer.start(loaded, host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()
