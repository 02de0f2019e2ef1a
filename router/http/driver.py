"""Runs one Chat Completions or Messages call: parse, check, place, stream, answer.

Shared by the faces (router/http/face.py says what a face supplies). The body's routing fields
come off first (router/http/routing.py), the face parses the rest, router/api/convert.py checks
the result with the same limits as gRPC, and the tenant is the API key's (router/api/auth.py).

Streaming: the response head goes out with the first token (or the end), so every failure before
it — no feasible backend, every fallback failing, budgets — is a plain error response with its
status; a failure after it is the face's in-stream error event, never a silent truncation. When
the client goes away the generation is cancelled (it settles what it produced, see
router/runtime/generation.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from router.api import convert
from router.api import router_pb2 as pb
from router.api.auth import TenantAuth
from router.api.keys import KeyEntry
from router.core.backend import TextDelta
from router.core.errors import InvalidArgument
from router.core.types import Decision, Request, Usage
from router.http import routing
from router.http.decision import decision_headers
from router.http.face import Face, Parsed
from router.http.status import HttpError, http_error
from router.runtime.engine import Router

SSE_HEAD = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
JSON = b"application/json"

Start = Callable[[int, list[tuple[bytes, bytes]]], Awaitable[None]]
Send = Callable[[bytes, bool], Awaitable[None]]  # (chunk, more to come)


class Exchange:
    """One HTTP exchange as the driver sees it: the parsed headers and the ASGI send."""

    def __init__(self, headers: dict[str, str], send: Callable[[dict], Awaitable[None]]) -> None:
        self.headers = headers
        self._send = send
        self.status = 0  # the status sent, once the head went out

    async def start(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.status = status
        await self._send({"type": "http.response.start", "status": status, "headers": headers})

    async def body(self, chunk: bytes, more: bool = False) -> None:
        await self._send({"type": "http.response.body", "body": chunk, "more_body": more})

    async def respond(
        self, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | tuple = ()
    ) -> None:
        """A whole response with a JSON body."""
        length = (b"content-length", str(len(body)).encode())
        await self.start(status, [(b"content-type", JSON), length, *headers])
        await self.body(body)

    async def fail(self, face: Face, error: HttpError) -> None:
        """The face's error object with the error's status and headers."""
        await self.respond(
            error.status, face.error_body(error.status, error.message, error.param), error.headers
        )


def build_request(
    router: Router,
    face: Face,
    body: Any,
    headers: dict[str, str],
    caller: KeyEntry | None,
    auth: TenantAuth | None,
) -> tuple[Parsed, Request]:
    """The checked request of a decoded body (raises RouterError naming the field)."""
    if not isinstance(body, dict):
        raise InvalidArgument("body", "must be a JSON object")
    fields = pb.GenerateRequest()
    routing.apply(fields, headers, body)
    parsed = face.parse(body)
    parsed.request.MergeFrom(fields)
    if auth is not None and caller is not None:
        parsed.request.tenant = auth.check(parsed.request.tenant, caller.tenant)
    key = caller.id if caller is not None else ""
    try:
        return parsed, convert.request_from_pb(parsed.request, router.config, api_key=key)
    except InvalidArgument as exc:  # named as the gRPC message has it; the face may rename it
        rename = parsed.rename or getattr(face, "field", None)
        if rename is None:
            raise
        raise InvalidArgument(rename(exc.field), exc.reason) from None


async def run(
    router: Router, face: Face, parsed: Parsed, request: Request, exchange: Exchange
) -> None:
    """Generates and answers, streaming or not (see the module docstring)."""
    if parsed.stream:
        await _stream(router, face, parsed, request, exchange)
    else:
        await _unary(router, face, parsed, request, exchange)


async def _unary(
    router: Router, face: Face, parsed: Parsed, request: Request, exchange: Exchange
) -> None:
    collector = face.collector(parsed, request.request_id)
    decision: Decision | None = None
    usage: Usage | None = None
    try:  # read to the end: the generation records its outcome after the usage
        async with contextlib.aclosing(router.generate(request)) as events:
            async for event in events:
                if isinstance(event, TextDelta):
                    collector.delta(event)
                elif isinstance(event, Decision):
                    decision = event
                else:
                    usage = event
    except Exception as exc:
        await exchange.fail(face, http_error(exc))
        return
    if decision is None or usage is None:
        await exchange.fail(face, HttpError(500, "internal error: the generation ended early"))
        return
    await exchange.respond(200, collector.body(decision, usage), decision_headers(decision))


async def _stream(
    router: Router, face: Face, parsed: Parsed, request: Request, exchange: Exchange
) -> None:
    encoder = face.encoder(parsed, request.request_id)
    decision: Decision | None = None
    usage: bytes | None = None  # the closing events
    started = False
    try:
        async with contextlib.aclosing(router.generate(request)) as events:
            async for event in events:
                if isinstance(event, Decision):
                    decision = event
                    continue
                if not started and decision is not None:
                    await exchange.start(200, SSE_HEAD + decision_headers(decision))
                    await exchange.body(encoder.start(decision), True)
                    started = True
                if isinstance(event, TextDelta):
                    await exchange.body(encoder.delta(event), True)
                else:
                    usage = encoder.finish(event)  # sent once the generation has ended
    except Exception as exc:  # CancelledError (the client left) is not one: it goes on up
        error = http_error(exc)
        if not started:
            await exchange.fail(face, error)
        else:
            await exchange.body(encoder.error(error.status, error.message))
        return
    if usage is not None:
        await exchange.body(usage)
    elif started:  # the generator ended without its usage: a bug, said in-stream
        await exchange.body(encoder.error(500, "internal error: the stream ended early"))
    else:
        await exchange.fail(face, HttpError(500, "internal error: the stream ended early"))
