"""The gRPC server: TokenRouter, health checking, reflection and graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path

import grpc
import structlog
from grpc_health.v1 import health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from router import health
from router.admin import RouterAdminService
from router.api import router_pb2, router_pb2_grpc
from router.config import LoadedConfig
from router.engine import Router
from router.errors import ConfigError
from router.service import TokenRouterService
from router.validate import validate_text

SERVICE_NAME = router_pb2.DESCRIPTOR.services_by_name["TokenRouter"].full_name
ADMIN_SERVICE_NAME = router_pb2.DESCRIPTOR.services_by_name["RouterAdmin"].full_name
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
        self._watcher: asyncio.Task[None] | None = None
        self._stop_watching = asyncio.Event()

    @classmethod
    async def start(
        cls, loaded: LoadedConfig, host: str | None = None, port: int | None = None
    ) -> RouterServer:
        """Loads the backends, binds (port 0 picks a free one) and starts serving."""
        router = await Router.create(loaded)
        server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        health_servicer = health.HealthService()
        self = cls(router, server, health_servicer, 0)
        service = TokenRouterService(router)
        router_pb2_grpc.add_TokenRouterServicer_to_server(service, server)
        router_pb2_grpc.add_RouterAdminServicer_to_server(
            RouterAdminService(service, self.reload), server
        )
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        names = [SERVICE_NAME, ADMIN_SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME]
        reflection.enable_server_reflection(names, server)
        cfg = loaded.config.server
        address = f"{host or cfg.host}:{cfg.port if port is None else port}"
        self.port = server.add_insecure_port(address)
        await server.start()
        for name in ("", SERVICE_NAME, ADMIN_SERVICE_NAME):
            await health_servicer.set(name, health.SERVING)
        if cfg.watch_config and Path(loaded.source).is_file():
            self._watcher = asyncio.create_task(self._watch(Path(loaded.source)))
        log.info(
            "serving",
            address=address,
            port=self.port,
            config=loaded.source,
            config_version=loaded.version,
            backends=list(router.backends),
        )
        return self

    async def reload(self, text: str | None = None) -> LoadedConfig:
        """Validates and swaps in a config (re-reads the file when `text` is None).

        Raises ConfigError and keeps the running config when the new one is invalid.
        """
        source = self.router.loaded.source
        try:
            if text is None:
                if not Path(source).is_file():
                    raise ConfigError(source, "", "not a file: send the config text to reload")
                text = await asyncio.to_thread(Path(source).read_text)
            result = await asyncio.to_thread(validate_text, text, source, self.router.registry)
            if result.problems:
                first, more = result.problems[0], len(result.problems) - 1
                extra = f" (and {more} more problem{'s' * (more > 1)})" if more else ""
                raise ConfigError(
                    first.file, first.path, first.reason + extra, first.line, first.column
                )
            assert result.loaded is not None
            await self.router.reload(result.loaded)
        except ConfigError as exc:
            log.error(
                "config rejected; the running config stays in force",
                error=str(exc),
                config_version=self.router.loaded.version,
            )
            raise
        return result.loaded

    async def _watch(self, path: Path) -> None:
        """Reloads when the config file changes; a bad edit is logged and ignored.

        The folder is watched, not the file, so editors and deploy tools that replace the file
        (write a temporary file, rename it over) keep being noticed.
        """
        import watchfiles

        path = path.resolve()
        changes = watchfiles.awatch(
            path.parent,
            stop_event=self._stop_watching,
            debounce=200,
            recursive=False,
            watch_filter=lambda _change, changed: Path(changed).name == path.name,
        )
        async for _ in changes:
            with contextlib.suppress(ConfigError):
                await self.reload()

    async def stop(self, grace: float | None = None) -> None:
        """Goes NOT_SERVING, refuses new calls, lets in-flight ones finish within `grace` s."""
        grace = self.router.config.server.grace_period_s if grace is None else grace
        self._stop_watching.set()
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
    reloads: set[asyncio.Task[object]] = set()

    def on_sighup() -> None:
        task = asyncio.ensure_future(server.reload())
        reloads.add(task)
        task.add_done_callback(lambda t: (reloads.discard(t), t.exception()))

    loop.add_signal_handler(signal.SIGHUP, on_sighup)
    await stop.wait()
    await server.stop()
