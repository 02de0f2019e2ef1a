"""The gate every tokenrouter.v1 call passes before its servicer: size, decoding, tenant keys.

A server interceptor that takes the request as bytes and, in order:
1. refuses a message larger than `server.max_receive_message_bytes` with RESOURCE_EXHAUSTED
   naming that setting (gRPC core's own limit sits at twice the setting, as a backstop for
   messages it must not even buffer; beyond it the client sees core's "Received message larger
   than max" instead);
2. with tenant keys on, authenticates TokenRouter calls from their metadata, before decoding
   (an unknown caller costs no parsing);
3. decodes it, answering INVALID_ARGUMENT for bytes that are not the request message (a string
   field that is not UTF-8, for instance) instead of gRPC's INTERNAL, and stamps the key's
   tenant on the request (router/api/auth.py); the key's public id goes in `auth.CALLER_KEY`.
Health checking and reflection pass untouched.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from router.api import router_pb2 as pb
from router.api.auth import CALLER_KEY, TenantAuth
from router.core.errors import RouterError

PACKAGE = "/tokenrouter.v1."
TOKENROUTER = "/tokenrouter.v1.TokenRouter/"


def core_limit(max_bytes: int) -> int:
    """The limit handed to gRPC core: a backstop above the one the gate answers for."""
    return 2 * max_bytes


def stamp_tenant(auth: TenantAuth, msg: Any, tenant: str) -> None:
    """Sets each request's tenant to the key's `tenant` (refuses one naming another tenant)."""
    if isinstance(msg, pb.GenerateRequest):
        msg.tenant = auth.check(msg.tenant, tenant)
    elif isinstance(msg, pb.RouteBatchRequest):
        for i, entry in enumerate(msg.requests):
            entry.tenant = auth.check(entry.tenant, tenant, f"requests[{i}].tenant")


class Gate(grpc.aio.ServerInterceptor):
    """Wraps the unary-request handlers of tokenrouter.v1 (see the module docstring)."""

    def __init__(self, max_bytes: int, auth: Callable[[], TenantAuth | None]) -> None:
        self._max = max_bytes
        self._auth = auth
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method = details.method
        if (wrapped := self._wrapped.get(method)) is not None:
            return wrapped  # the servicers' handlers never change: wrap each once
        handler = await continuation(details)
        if handler is None or not method.startswith(PACKAGE) or handler.request_streaming:
            return handler
        wrapped = self._wrapped[method] = self._wrap(method, handler)
        return wrapped

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """`handler` with the gate in front: it takes bytes and hands on the checked message."""
        decode = handler.request_deserializer

        async def prepare(raw: bytes, context: grpc.aio.ServicerContext) -> Any:
            return await self._prepare(method, decode, raw, context)

        if handler.response_streaming:
            inner_stream = handler.unary_stream
            if not inspect.iscoroutinefunction(inner_stream):
                raise TypeError(f"{method}: streaming handlers write with context.write")

            async def stream(raw: bytes, context: grpc.aio.ServicerContext) -> None:
                await inner_stream(await prepare(raw, context), context)

            return grpc.unary_stream_rpc_method_handler(
                stream, response_serializer=handler.response_serializer
            )
        inner = handler.unary_unary

        async def unary(raw: bytes, context: grpc.aio.ServicerContext) -> Any:
            return await inner(await prepare(raw, context), context)

        return grpc.unary_unary_rpc_method_handler(
            unary, response_serializer=handler.response_serializer
        )

    async def _prepare(
        self,
        method: str,
        decode: Callable[[bytes], Any] | None,
        raw: bytes,
        context: grpc.aio.ServicerContext,
    ) -> Any:
        if len(raw) > self._max:
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"request message of {len(raw)} bytes exceeds server.max_receive_message_bytes "
                f"({self._max})",
            )
        auth = self._auth() if method.startswith(TOKENROUTER) else None
        tenant = ""
        if auth is not None:  # before decoding: an unknown caller costs no parsing
            try:
                caller = auth.caller(context.invocation_metadata())
            except RouterError as exc:
                await context.abort(getattr(grpc.StatusCode, exc.code), str(exc))
            tenant = caller.tenant
            CALLER_KEY.set(caller.id)
        try:
            msg = decode(raw) if decode is not None else raw
        except Exception:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                "request: not a valid message for this method (strings must be UTF-8)",
            )
        if auth is not None:
            try:
                stamp_tenant(auth, msg, tenant)
            except RouterError as exc:
                await context.abort(getattr(grpc.StatusCode, exc.code), str(exc))
        return msg
