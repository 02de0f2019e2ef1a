"""The ASGI application of the HTTP face: paths, body limits, auth, health and metrics.

| path | what |
|---|---|
| `POST /v1/chat/completions` | OpenAI Chat Completions (router/http/openai_face.py) |
| `POST /v1/messages` | Anthropic Messages (router/http/anthropic_face.py) |
| `GET /v1/models` | the configured models and aliases, and `auto` (the router decides) |
| `GET /metrics` | Prometheus; the admin token (Bearer) when one is set, else loopback only |
| `GET /healthz` | 200 while the process serves |
| `GET /readyz` | 200 when a backend is healthy and the server is not draining, else 503 |

Bodies: at most `server.max_receive_message_bytes` (a longer Content-Length is refused before
reading; a body that grows past it is cut off) and read within `server.http_body_timeout_s`;
JSON decoded by orjson (off the loop when large). With tenant keys, `Authorization: Bearer <key>`
or `x-api-key: <key>` (what the Anthropic SDK sends) names the tenant.
"""

from __future__ import annotations

import asyncio
import hmac
import os
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from router.api.addresses import host_is_loopback
from router.api.auth import PermissionDenied, TenantAuth, Unauthenticated, bearer
from router.api.keys import KeyEntry
from router.core.errors import InvalidArgument, ResourceExhausted
from router.http import driver
from router.http.face import Face
from router.http.status import HttpError, http_error
from router.observability import tracing
from router.runtime.engine import Router

ROUTES = {  # metrics labels of the paths
    "/v1/chat/completions": "chat_completions",
    "/v1/messages": "messages",
    "/v1/models": "models",
    "/metrics": "metrics",
    "/healthz": "healthz",
    "/readyz": "readyz",
}
INLINE_JSON_BYTES = 256 * 1024  # larger bodies are decoded in a thread
TEXT = b"text/plain; charset=utf-8"
Receive = Callable[[], Awaitable[dict]]
SendFn = Callable[[dict], Awaitable[None]]


class HttpApp:
    """The ASGI app; `faces` maps a POST path to its face, `models` answers GET /v1/models."""

    def __init__(
        self,
        router: Router,
        auth: Callable[[], TenantAuth | None],
        faces: dict[str, Face],
        models: Callable[[Router], bytes],
        *,
        draining: Callable[[], bool] = lambda: False,
    ) -> None:
        self.router = router
        self._auth = auth
        self._faces = faces
        self._default_face = next(iter(faces.values()))  # its error shape for other paths
        self._models = models
        self._draining = draining

    async def __call__(self, scope: dict, receive: Receive, send: SendFn) -> None:
        if scope["type"] != "http":
            return  # lifespan and websockets are off
        exchange = driver.Exchange(_headers(scope["headers"]), send)
        try:
            await self._route(scope, receive, exchange)
        finally:
            route = ROUTES.get(scope["path"], "other")
            self.router.metrics.http_answered(route, exchange.status or 499)

    async def _route(self, scope: dict, receive: Receive, exchange: driver.Exchange) -> None:
        headers = exchange.headers
        method, path = scope["method"], scope["path"]
        face = self._faces.get(path)
        try:
            if face is not None:
                if method != "POST":
                    raise _MethodNotAllowed("POST")
                await self._generate(face, scope, receive, exchange)
            elif path == "/v1/models":
                _only_get(method)
                self._caller(headers)
                await exchange.respond(200, self._models(self.router))
            elif path == "/healthz":
                _only_get(method)
                await exchange.respond(200, b'{"status":"ok"}')
            elif path == "/readyz":
                _only_get(method)
                ready = self._ready()
                await exchange.respond(200 if ready else 503, orjson.dumps({"ready": ready}))
            elif path == "/metrics":
                _only_get(method)
                await self._metrics(scope, headers, exchange)
            else:
                await exchange.fail(self._default_face, HttpError(404, f"no such path: {path}"))
        except _MethodNotAllowed as exc:
            allow = ((b"allow", exc.allow.encode()),)
            await exchange.fail(face or self._default_face, HttpError(405, str(exc), None, allow))
        except Exception as exc:  # a RouterError from the body, auth or request checks
            if exchange.status:
                raise
            await exchange.fail(face or self._default_face, http_error(exc))

    def _caller(self, headers: dict[str, str]) -> KeyEntry | None:
        """The caller's key with tenant keys on (raises Unauthenticated), else None."""
        auth = self._auth()
        if auth is None:
            return None
        key = headers.get("x-api-key")
        metadata = [("authorization", f"Bearer {key}")] if key else headers.items()
        return auth.caller(metadata)

    async def _generate(
        self, face: Face, scope: dict, receive: Receive, exchange: driver.Exchange
    ) -> None:
        headers = exchange.headers
        path = scope["path"]
        attributes = {"http.route": path, "tokenrouter.face": face.name}
        with tracing.request_span(f"POST {path}", headers.items(), None, attributes) as span:
            await self._answer(face, receive, exchange)
            if span is not None:
                tracing.http_status(span, exchange.status)

    async def _answer(self, face: Face, receive: Receive, exchange: driver.Exchange) -> None:
        headers = exchange.headers
        caller = self._caller(headers)  # before reading the body: an unknown caller costs nothing
        raw = await self._body(headers, receive)
        body = await _decode(raw)
        parsed, request = driver.build_request(
            self.router, face, body, headers, caller, self._auth()
        )
        tracing.describe(request)
        task = asyncio.current_task()
        assert task is not None
        left = False  # the client went away while the answer was being made

        def client_left(watcher: asyncio.Future[None]) -> None:
            nonlocal left
            if not watcher.cancelled() and not left:
                left = True
                task.cancel()  # the generation settles what it produced so far

        watcher = asyncio.ensure_future(_disconnected(receive))
        watcher.add_done_callback(client_left)
        try:
            await driver.run(self.router, face, parsed, request, exchange)
        except asyncio.CancelledError:
            if not left or task.uncancel() > 0:
                raise  # a cancel of our own (a shutdown), not the client's leaving
        finally:
            watcher.remove_done_callback(client_left)
            watcher.cancel()

    async def _body(self, headers: dict[str, str], receive: Receive) -> bytes:
        server = self.router.config.server
        limit = server.max_receive_message_bytes
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            raise BodyTooLarge(
                f"request body of {length} bytes exceeds server.max_receive_message_bytes ({limit})"
            )
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(server.http_body_timeout_s):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise asyncio.CancelledError
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > limit:
                        raise BodyTooLarge(
                            f"request body exceeds server.max_receive_message_bytes ({limit})"
                        )
                    chunks.append(chunk)
                    if not message.get("more_body"):
                        break
        except TimeoutError:
            raise InvalidArgument(
                "body",
                f"not received within server.http_body_timeout_s ({server.http_body_timeout_s} s)",
            ) from None
        return b"".join(chunks)

    def _ready(self) -> bool:
        if self._draining():
            return False
        rt = self.router.runtime
        return any(rt.health.status(name) == "healthy" for name in rt.backends)

    async def _metrics(
        self, scope: dict, headers: dict[str, str], exchange: driver.Exchange
    ) -> None:
        env = self.router.config.server.admin_token_env
        token = os.environ.get(env, "")
        if token:
            given = bearer(headers.items()) or ""
            if not hmac.compare_digest(given.encode(), token.encode()):
                raise Unauthenticated(f"/metrics needs the admin token ({env}) as a Bearer token")
        else:
            client = scope.get("client")
            if not client or not host_is_loopback(client[0]):
                raise PermissionDenied(
                    f"/metrics answers loopback clients only while {env} is not set"
                )
        body, content_type = self.router.metrics.render()
        await exchange.start(200, [(b"content-type", content_type.encode())])
        await exchange.body(body)


class BodyTooLarge(ResourceExhausted):
    """A request body over server.max_receive_message_bytes: 413."""

    http_status = 413


class _MethodNotAllowed(Exception):
    def __init__(self, allow: str) -> None:
        super().__init__(f"method not allowed (use {allow})")
        self.allow = allow


def _only_get(method: str) -> None:
    if method not in ("GET", "HEAD"):
        raise _MethodNotAllowed("GET")


def _headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """Header names (lower case, as uvicorn gives them) to values; repeats joined with ", "."""
    headers: dict[str, str] = {}
    for name, value in raw:
        key, text = name.decode("latin-1"), value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return headers


async def _decode(raw: bytes) -> Any:
    try:
        if len(raw) > INLINE_JSON_BYTES:
            return await asyncio.to_thread(orjson.loads, raw)
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidArgument("body", f"not valid JSON ({exc.msg} at byte {exc.pos})") from None


async def _disconnected(receive: Receive) -> None:
    """Returns when the client goes away (uvicorn answers http.disconnect then)."""
    while (await receive())["type"] != "http.disconnect":
        pass
