"""The gRPC TokenRouter service: translation between proto and the router core, nothing more."""

from __future__ import annotations

import contextlib
import time
import uuid

import grpc
import structlog

from router.api import convert
from router.api import router_pb2 as pb
from router.api import router_pb2_grpc as pb_grpc
from router.api.auth import CALLER_KEY
from router.core.backend import TextDelta
from router.core.errors import InvalidArgument, RouterError
from router.core.types import Decision, Request
from router.observability import tracing
from router.placement.slicing import sliced
from router.runtime.engine import Router

log = structlog.get_logger("tokenrouter")


SERVICE = pb.DESCRIPTOR.services_by_name["TokenRouter"].full_name
HEALTH_TO_PB = {"healthy": pb.HEALTHY, "unhealthy": pb.UNHEALTHY, "ejected": pb.EJECTED}


async def abort(context: grpc.aio.ServicerContext, exc: Exception) -> None:
    """Ends the call with the status the error names and its message.

    Anything else is a bug: its details go to the log under a fresh error id, and the client
    gets INTERNAL "internal error (id ...)" only, so no exception text leaks to callers.
    """
    if isinstance(exc, RouterError):
        await context.abort(getattr(grpc.StatusCode, exc.code), str(exc))
    error_id = uuid.uuid4().hex[:12]
    log.error("internal error", error_id=error_id, exc_info=exc)
    await context.abort(grpc.StatusCode.INTERNAL, f"internal error (id {error_id})")


class TokenRouterService(pb_grpc.TokenRouterServicer):
    def __init__(self, router: Router) -> None:
        self.router = router

    async def _request(self, msg: pb.GenerateRequest, context: grpc.aio.ServicerContext) -> Request:
        left = context.time_remaining()
        deadline = None if left is None else time.monotonic() + left
        try:
            return convert.request_from_pb(
                msg, self.router.config, deadline=deadline, api_key=CALLER_KEY.get()
            )
        except Exception as exc:
            await abort(context, exc)
            raise  # unreachable: abort raises

    @tracing.grpc_span(SERVICE, "Generate")
    async def Generate(
        self, request: pb.GenerateRequest, context: grpc.aio.ServicerContext
    ) -> None:
        """Writes the stream with context.write (no generator between the engine and gRPC)."""
        req = await self._request(request, context)
        write = context.write
        try:
            async with contextlib.aclosing(self.router.generate(req)) as events:
                async for event in events:
                    if isinstance(event, TextDelta):
                        if event.tool_calls:
                            await write(pb.GenerateResponse(delta=convert.delta_to_pb(event)))
                        else:
                            await write(pb.GenerateResponse(delta=pb.Delta(text=event.text)))
                    elif isinstance(event, Decision):
                        await write(pb.GenerateResponse(decision=convert.decision_to_pb(event)))
                    else:
                        await write(pb.GenerateResponse(usage=convert.usage_to_pb(event)))
        except Exception as exc:
            await abort(context, exc)

    @tracing.grpc_span(SERVICE, "Route")
    async def Route(
        self, request: pb.GenerateRequest, context: grpc.aio.ServicerContext
    ) -> pb.RouteDecision:
        req = await self._request(request, context)
        try:
            return convert.decision_to_pb(await self.router.route(req))
        except Exception as exc:
            await abort(context, exc)
            raise

    @tracing.grpc_span(SERVICE, "RouteBatch")
    async def RouteBatch(
        self, request: pb.RouteBatchRequest, context: grpc.aio.ServicerContext
    ) -> pb.RouteBatchResponse:
        """At most limits.max_batch_requests requests; the per-request work (conversion,
        contexts, evaluation, the answer) runs in slices between loop turns
        (router/placement/slicing.py), so a large batch does not stall the other calls."""
        try:
            config = self.router.config
            if not request.requests:
                raise InvalidArgument("requests", "at least one request is required")
            if len(request.requests) > (limit := config.limits.max_batch_requests):
                raise InvalidArgument(
                    "requests", f"{len(request.requests)} requests exceed the limit of {limit}"
                )
            key = CALLER_KEY.get()
            reqs = [
                convert.request_from_pb(r, config, prefix=f"requests[{i}].", api_key=key)
                async for i, r in sliced(enumerate(request.requests))
            ]
            results = await self.router.route_batch(reqs)
            decisions = [convert.result_to_pb(r) async for r in sliced(results)]
        except Exception as exc:
            await abort(context, exc)
            raise
        return pb.RouteBatchResponse(decisions=decisions)

    async def ListBackends(
        self, request: pb.ListBackendsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListBackendsResponse:
        rt = self.router.runtime
        return pb.ListBackendsResponse(
            backends=[
                convert.backend_to_pb(v, HEALTH_TO_PB[rt.health.status(v.name)]) for v in rt.views()
            ],
            config_version=rt.loaded.version,
            config_loaded_at_unix=rt.loaded_at,
        )
