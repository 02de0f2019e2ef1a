"""The gRPC server: TokenRouter, health checking, reflection and graceful shutdown.

Security at the edge: TLS and mTLS from `server.tls`, the gate (router/api/gate.py: message size,
decoding, tenant keys), and a refusal to start on a non-loopback address without an admin token,
or without TLS and tenant keys unless told `insecure`.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
import structlog
from grpc_health.v1 import health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from router.api import gate, grpc_health_servicer, router_pb2, router_pb2_grpc
from router.api.addresses import bind_address, host_is_loopback
from router.api.admin import RouterAdminService, validate_config_text
from router.api.auth import TenantAuth
from router.api.service import TokenRouterService
from router.config import LoadedConfig, ServerConfig, TlsConfig, read_config_file
from router.config.reload_guard import check_sent_config
from router.core.errors import ConfigError
from router.http.server import HttpServer
from router.http.serving import start_http
from router.observability import tracing_setup
from router.predict.model import CARD
from router.runtime.engine import Router

SERVICE_NAME = router_pb2.DESCRIPTOR.services_by_name["TokenRouter"].full_name
ADMIN_SERVICE_NAME = router_pb2.DESCRIPTOR.services_by_name["RouterAdmin"].full_name
log = structlog.get_logger("tokenrouter")


class UnsafeExposure(Exception):
    """Serving as configured would expose the router; the message says what is missing."""


def check_exposure(host: str, cfg: ServerConfig, insecure: bool = False) -> list[str]:
    """Refuses a non-loopback bind without an admin token, or without TLS and tenant keys.

    Returns what is missing but was allowed by `insecure` (for a warning).
    """
    if host_is_loopback(host):
        return []
    if not os.environ.get(cfg.admin_token_env):
        raise UnsafeExposure(
            f"{host} is not a loopback address: set an admin token in {cfg.admin_token_env} "
            "(server.admin_token_env) first"
        )
    missing = [
        what
        for what, present in (
            ("TLS (server.tls)", cfg.tls is not None),
            ("tenant keys (server.tenant_keys_file)", cfg.tenant_keys_file is not None),
        )
        if not present
    ]
    if missing and not insecure:
        raise UnsafeExposure(
            f"{host} is not a loopback address and {' and '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not configured: configure "
            f"{'it' if len(missing) == 1 else 'them'}, or pass --insecure to serve anyway"
        )
    return missing


def _read(path: str, field: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError("<server>", field, f"cannot read {path}: {exc.strerror or exc}") from None


def server_credentials(tls: TlsConfig) -> grpc.ServerCredentials:
    """TLS credentials from PEM files; with `client_ca_file`, client certificates are required."""
    key = _read(tls.key_file, "server.tls.key_file")
    cert = _read(tls.cert_file, "server.tls.cert_file")
    ca = _read(tls.client_ca_file, "server.tls.client_ca_file") if tls.client_ca_file else None
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=ca, require_client_auth=ca is not None
    )


def _digest(path: Path) -> bytes | None:
    """The SHA-256 of a file's bytes, or None when it cannot be read (blocking)."""
    try:
        return hashlib.sha256(path.read_bytes()).digest()
    except OSError:
        return None


class RouterServer:
    """A running router: its core, its gRPC server and the port it listens on."""

    def __init__(
        self,
        router: Router,
        server: grpc.aio.Server,
        health: grpc_health_servicer.HealthService,
        port: int,
    ) -> None:
        self.router = router
        self.server = server
        self.health = health
        self.port = port
        self.auth: TenantAuth | None = None
        self.http: HttpServer | None = None  # the HTTP faces, when on
        self.draining = False
        self._started = router.loaded.config.server
        self._watcher: asyncio.Task[None] | None = None
        self._stop_watching = asyncio.Event()
        self.tracing: tracing_setup.TracingSetup | None = None

    @classmethod
    async def start(
        cls,
        loaded: LoadedConfig,
        host: str | None = None,
        port: int | None = None,
        *,
        insecure: bool = False,
        http_port: int | None = None,
        worker: bool = False,
    ) -> RouterServer:
        """Loads the backends, binds (port 0 picks a free one) and starts serving.

        The HTTP faces listen on `http_port` (else `server.http_port`; neither: off), on
        `server.http_host` (else the gRPC host). `worker`: one of `serve --workers N`, sharing
        both ports with the others (SO_REUSEPORT; router/tools/workers.py). Raises
        UnsafeExposure (see check_exposure) and ConfigError for unreadable TLS or keys files
        before anything is loaded.
        """
        cfg = loaded.config.server
        host = host or cfg.host
        missing = check_exposure(host, cfg, insecure)
        http_port = cfg.http_port if http_port is None else http_port
        http_host = cfg.http_host or host
        if http_port is not None:
            missing += [m for m in check_exposure(http_host, cfg, insecure) if m not in missing]
        creds = await asyncio.to_thread(server_credentials, cfg.tls) if cfg.tls else None
        keys = cfg.tenant_keys_file
        auth = await asyncio.to_thread(TenantAuth, keys) if keys else None
        router = await Router.create(loaded)
        limit = cfg.max_receive_message_bytes
        options = [
            ("grpc.so_reuseport", int(worker)),
            ("grpc.max_receive_message_length", gate.core_limit(limit)),
        ]
        server = grpc.aio.server(
            options=options, interceptors=[gate.Gate(limit, lambda: self.auth)]
        )
        health_servicer = grpc_health_servicer.HealthService()
        self = cls(router, server, health_servicer, 0)
        self.auth = auth
        service = TokenRouterService(router)
        router_pb2_grpc.add_TokenRouterServicer_to_server(service, server)
        router_pb2_grpc.add_RouterAdminServicer_to_server(
            RouterAdminService(
                service, self._admin_reload, cfg, tokenless_unix=host.startswith("unix:")
            ),
            server,
        )
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        names = [
            SERVICE_NAME,
            ADMIN_SERVICE_NAME,
            grpc_health_servicer.SERVICE_NAME,
            reflection.SERVICE_NAME,
        ]
        reflection.enable_server_reflection(names, server)
        address = bind_address(host, cfg.port if port is None else port)
        try:
            if creds is not None:
                self.port = server.add_secure_port(address, creds)
            else:
                self.port = server.add_insecure_port(address)
        except RuntimeError:
            await router.aclose()
            raise ConfigError("<server>", "server.host", f"cannot bind {address}") from None
        if host.startswith("unix:"):  # a path socket: only its owner may connect
            await asyncio.to_thread(os.chmod, host.removeprefix("unix:").removeprefix("//"), 0o600)
        try:
            self.tracing = tracing_setup.setup(loaded.config.tracing)
        except ConfigError:
            await router.aclose()
            raise
        await server.start()
        if http_port is not None:
            try:
                self.http = await start_http(
                    router,
                    lambda: self.auth,
                    lambda: self.draining,
                    http_host,
                    http_port,
                    worker=worker,
                )
            except BaseException:
                await server.stop(0)
                await router.aclose()
                if self.tracing is not None:
                    await asyncio.to_thread(self.tracing.shutdown)
                raise
        if router.shared is not None:
            router.shared.attach(
                lambda: router.runtime, lambda t: self.reload(t, sent=t is not None)
            )
        for name in ("", SERVICE_NAME, ADMIN_SERVICE_NAME):
            await health_servicer.set(name, grpc_health_servicer.SERVING)
        watched = self._watched(loaded)
        if cfg.watch_config and watched:
            self._watcher = asyncio.create_task(self._watch(watched))
        if missing:
            log.warning("serving without " + " and ".join(missing), address=address)
        log.info(
            "serving",
            address=address,
            port=self.port,
            http_port=self.http.port if self.http else None,
            tls=creds is not None,
            mtls=cfg.tls is not None and cfg.tls.client_ca_file is not None,
            tenant_keys=auth.count if auth else None,
            config=loaded.source,
            config_version=loaded.version,
            backends=list(router.backends),
        )
        return self

    def _watched(self, loaded: LoadedConfig) -> dict[Path, Callable[[], Awaitable[object]]]:
        files: dict[Path, Callable[[], Awaitable[object]]] = {}
        if Path(loaded.source).is_file():
            files[Path(loaded.source).absolute()] = self.reload
        if self.auth is not None:
            files[Path(self.auth.path).absolute()] = self.reload_keys
        if (folder := loaded.config.predictors.path) is not None:  # retrained: reload
            files[Path(folder, CARD).expanduser().absolute()] = lambda: self.reload(
                self.router.loaded.text
            )
        return files

    async def _admin_reload(self, text: str | None) -> LoadedConfig:
        """A reload through the admin API: here, then announced to the fleet (shared state)."""
        loaded = await self.reload(text, sent=text is not None)
        if self.router.shared is not None:
            await self.router.shared.processes.announce(text)
        return loaded

    async def reload(self, text: str | None = None, *, sent: bool = False) -> LoadedConfig:
        """Validates and swaps in a config (re-reads the file when `text` is None).

        `sent`: the text came through the admin API, so it may not reach for new secrets
        (router/config/reload_guard.py). Raises ConfigError and keeps the running config when the
        new one is invalid.
        """
        source = self.router.loaded.source
        try:
            if text is None:
                if not Path(source).is_file():
                    raise ConfigError(source, "", "not a file: send the config text to reload")
                text = await asyncio.to_thread(read_config_file, source)
            registry = self.router.registry
            result = await asyncio.to_thread(validate_config_text, text, source, registry)
            if result.problems:
                first, more = result.problems[0], len(result.problems) - 1
                extra = f" (and {more} more problem{'s' * (more > 1)})" if more else ""
                raise ConfigError(
                    first.file, first.path, first.reason + extra, first.line, first.column
                )
            assert result.loaded is not None
            if sent:
                check_sent_config(result.loaded, self.router.config, self._started.reload_allow)
            await self.router.reload(result.loaded)
        except ConfigError as exc:
            log.error(
                "config rejected; the running config stays in force",
                error=str(exc),
                config_version=self.router.loaded.version,
            )
            raise
        return result.loaded

    async def reload_keys(self) -> None:
        """Re-reads the tenant keys file; a bad file is logged and the current keys stay."""
        if self.auth is None:
            return
        try:
            await asyncio.to_thread(self.auth.reload)
        except ConfigError as exc:
            log.error("tenant keys rejected; the current keys stay in force", error=str(exc))
            raise

    async def _watch(self, files: dict[Path, Callable[[], Awaitable[object]]]) -> None:
        """Reloads a watched file when its content changes; any failure is logged and watching
        goes on.

        Folders are watched, not files, so editors and deploy tools that replace a file (write
        a temporary file, rename it over) keep being noticed; so is the folder a symlinked file
        points into, and Kubernetes' ConfigMap swaps (`router.yaml -> ..data/router.yaml`, with
        `..data` replaced). Every event that may concern a file makes it re-read, and it is
        reloaded only when its bytes changed; when a symlink now points elsewhere, the watch is
        re-armed on the new folders.
        """
        import watchfiles

        seen = {path: await asyncio.to_thread(_digest, path) for path in files}
        while not self._stop_watching.is_set():
            targets = {path.resolve() for path in files}
            folders = sorted({str(p.parent) for p in (*files, *targets) if p.parent.is_dir()})

            def relevant(_change: object, changed: str, targets: set[Path] = targets) -> bool:
                path = Path(changed)
                return path in files or path in targets or path.name.startswith("..")

            try:
                async for _ in watchfiles.awatch(
                    *folders,
                    stop_event=self._stop_watching,
                    debounce=200,
                    recursive=False,
                    watch_filter=relevant,
                ):
                    for path, reload in files.items():
                        digest = await asyncio.to_thread(_digest, path)
                        if digest != seen[path]:
                            seen[path] = digest
                            await self._reload_watched(path, reload)
                    if {path.resolve() for path in files} != targets:
                        break  # a symlink moved: watch the folders it points into now
            except Exception:
                log.exception("file watch failed; restarting it in 1 s", files=[*map(str, files)])
                await asyncio.sleep(1.0)

    async def reload_files(self) -> None:
        """Re-reads the config file and the tenant keys file (SIGHUP); failures are logged."""
        source = Path(self.router.loaded.source)
        if source.is_file():
            await self._reload_watched(source, self.reload)
        if self.auth is not None:
            await self._reload_watched(Path(self.auth.path), self.reload_keys)

    async def _reload_watched(self, path: Path, reload: Callable[[], Awaitable[object]]) -> None:
        try:
            await reload()
        except ConfigError:
            pass  # logged by the reload; the running version stays
        except Exception:
            log.exception("reload failed; the running version stays", file=str(path))

    async def stop(self, grace: float | None = None) -> None:
        """Goes NOT_SERVING, refuses new calls, lets in-flight ones finish within `grace` s."""
        grace = self.router.config.server.grace_period_s if grace is None else grace
        self.draining = True
        self._stop_watching.set()
        await self.health.shutdown()
        log.info("shutting down", grace_period_s=grace)
        if self.http is not None:
            await asyncio.gather(self.server.stop(grace), self.http.stop())
        else:
            await self.server.stop(grace)
        await self.router.aclose()
        if self.tracing is not None:  # flushes the spans still queued for export
            await asyncio.to_thread(self.tracing.shutdown)
        log.info("stopped")


async def serve(
    loaded: LoadedConfig,
    host: str | None = None,
    port: int | None = None,
    *,
    insecure: bool = False,
    http_port: int | None = None,
    worker: bool = False,
    on_ready: Callable[[RouterServer, asyncio.Event], object] | None = None,
) -> None:
    """Runs the server until SIGTERM or SIGINT, then shuts down gracefully; SIGHUP reloads.

    `on_ready` is called once serving with the server and the event that stops it (a worker
    tells its supervisor, and stops when the supervisor is gone).
    """
    server = await RouterServer.start(
        loaded, host, port, insecure=insecure, http_port=http_port, worker=worker
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    reloads: set[asyncio.Task[object]] = set()

    def on_sighup() -> None:
        task = asyncio.ensure_future(server.reload_files())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, on_sighup)
    if on_ready is not None:
        on_ready(server, stop)
    await stop.wait()
    await server.stop()
