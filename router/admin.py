"""The RouterAdmin gRPC service: read, validate and reload the config; explain decisions.

Guarded by a bearer token read from the environment variable `server.admin_token_env`: a call
with a missing or wrong token gets UNAUTHENTICATED. With no token configured, only loopback
clients are answered (others get PERMISSION_DENIED).
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Awaitable, Callable

import grpc

from router import convert
from router.api import router_pb2 as pb
from router.api import router_pb2_grpc as pb_grpc
from router.config import LoadedConfig
from router.errors import ConfigError, RouterError
from router.service import TokenRouterService, abort
from router.validate import validate_text

LOOPBACK_PREFIXES = ("ipv4:127.", "ipv6:[::1]", "unix:")


class RouterAdminService(pb_grpc.RouterAdminServicer):
    def __init__(
        self,
        router_service: TokenRouterService,
        reload: Callable[[str | None], Awaitable[LoadedConfig]],
    ) -> None:
        self._service = router_service
        self._reload = reload

    @property
    def router(self):  # type: ignore[no-untyped-def]
        return self._service.router

    async def _authorize(self, context: grpc.aio.ServicerContext) -> None:
        env = self.router.config.server.admin_token_env
        token = os.environ.get(env, "")
        if not token:
            if not context.peer().startswith(LOOPBACK_PREFIXES):
                await context.abort(
                    grpc.StatusCode.PERMISSION_DENIED,
                    f"admin calls are answered on loopback only while {env} is not set",
                )
            return
        metadata = dict(context.invocation_metadata() or ())
        given = metadata.get("authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong admin token")

    def _info(self) -> pb.ConfigInfo:
        rt = self.router.runtime
        return pb.ConfigInfo(
            version=rt.loaded.version,
            source=rt.loaded.source,
            text=rt.loaded.text,
            loaded_at_unix=rt.loaded_at,
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
        result = validate_text(request.text, "<request>", self.router.registry)
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
