"""The RouterAdmin gRPC service: read, validate and reload the config; explain decisions.

Guarded by a bearer token read from the environment variable `server.admin_token_env`: a call
with a missing or wrong token gets UNAUTHENTICATED. With no token set, only clients of a Unix
socket file are answered (`unix:/path`, made mode 0600; not an abstract socket, which has no
permissions), and loopback TCP clients (127.0.0.0/8, ::1) when `server.admin_loopback` is true:
a proxy or sidecar on the same host makes every remote client look like loopback, so that is
opt-in. Everyone else gets PERMISSION_DENIED. These settings come from the config the server
started with; a reload does not change them.
"""

from __future__ import annotations

import asyncio
import hmac
import os
from collections.abc import Awaitable, Callable

import grpc

from router.api import convert
from router.api import router_pb2 as pb
from router.api import router_pb2_grpc as pb_grpc
from router.api.addresses import parse_peer
from router.api.auth import bearer
from router.api.service import TokenRouterService, abort
from router.config import LoadedConfig, ServerConfig
from router.config.validate import Problem, Result, validate_text
from router.core.errors import ConfigError, RouterError
from router.core.registry import Registry


def validate_config_text(text: str, source: str, registry: Registry | None = None) -> Result:
    """validate_text that reports any failure as a problem (deep nesting, odd YAML, ...)."""
    try:
        return validate_text(text, source, registry)
    except ConfigError as exc:
        return Result([Problem.of(exc)])
    except Exception as exc:  # a parser giving up (RecursionError, ...) is the text's problem
        return Result([Problem(source, 0, 0, "", f"cannot read the config: {type(exc).__name__}")])


class RouterAdminService(pb_grpc.RouterAdminServicer):
    def __init__(
        self,
        router_service: TokenRouterService,
        reload: Callable[[str | None], Awaitable[LoadedConfig]],
        server_config: ServerConfig,
        *,
        tokenless_unix: bool = False,
    ) -> None:
        self._service = router_service
        self._reload = reload
        self._server = server_config
        # Only a socket file (unix:/path, mode 0600) is guarded by file permissions; an abstract
        # socket (unix-abstract:) has none, so any local process could reach it.
        self._tokenless_unix = tokenless_unix

    @property
    def router(self):  # type: ignore[no-untyped-def]
        return self._service.router

    async def _authorize(self, context: grpc.aio.ServicerContext) -> None:
        env = self._server.admin_token_env
        token = os.environ.get(env, "")
        if not token:
            peer = parse_peer(context.peer())
            if (peer.kind == "unix" and self._tokenless_unix) or (
                peer.is_loopback and self._server.admin_loopback
            ):
                return
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"admin calls need a token while {env} is not set (without one, only clients of a "
                "Unix socket file are answered, and loopback ones when server.admin_loopback is "
                "true)",
            )
        given = bearer(context.invocation_metadata()) or ""
        if not hmac.compare_digest(given.encode(), token.encode()):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong admin token")

    def _info(self) -> pb.ConfigInfo:
        rt = self.router.runtime
        shared = self.router.shared
        fleet = shared.processes.fleet if shared is not None else []
        return pb.ConfigInfo(
            version=rt.loaded.version,
            source=rt.loaded.source,
            text=rt.loaded.text,
            loaded_at_unix=rt.loaded_at,
            processes=[
                pb.ProcessInfo(
                    id=p.id,
                    host=p.host,
                    pid=p.pid,
                    config_version=p.version,
                    config_source=p.source,
                    loaded_at_unix=p.loaded_at,
                    seen_at_unix=p.seen_at,
                )
                for p in fleet
            ],
        )

    async def GetConfig(
        self, request: pb.GetConfigRequest, context: grpc.aio.ServicerContext
    ) -> pb.ConfigInfo:
        await self._authorize(context)
        return self._info()

    async def ValidateConfig(
        self, request: pb.ValidateConfigRequest, context: grpc.aio.ServicerContext
    ) -> pb.ValidateConfigResponse:
        await self._authorize(context)
        result = await asyncio.to_thread(
            validate_config_text, request.text, "<request>", self.router.registry
        )
        return pb.ValidateConfigResponse(
            valid=not result.problems,
            version=result.version,
            problems=[
                pb.ConfigProblem(
                    file=p.file,
                    line=p.line,
                    column=p.column,
                    path=p.path,
                    reason=p.reason,
                    message=str(p),
                )
                for p in result.problems
            ],
        )

    async def ReloadConfig(
        self, request: pb.ReloadConfigRequest, context: grpc.aio.ServicerContext
    ) -> pb.ConfigInfo:
        await self._authorize(context)
        try:
            await self._reload(request.text or None)
        except ConfigError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"config rejected: {exc}")
        except Exception as exc:
            await abort(context, exc)
        return self._info()

    async def Explain(
        self, request: pb.GenerateRequest, context: grpc.aio.ServicerContext
    ) -> pb.RouteDecision:
        await self._authorize(context)
        try:
            req = convert.request_from_pb(request, self.router.config)
            return convert.decision_to_pb(await self.router.route(req))
        except RouterError as exc:
            await abort(context, exc)
            raise
