"""Puts the HTTP faces together for a running router: the app with its faces, and its server."""

from __future__ import annotations

import os
from collections.abc import Callable

from router.api.auth import TenantAuth
from router.http.anthropic_face import AnthropicFace
from router.http.app import HttpApp
from router.http.openai_face import OpenAIFace, models_body
from router.http.server import HttpServer
from router.runtime.engine import Router

CHAT_COMPLETIONS = "/v1/chat/completions"
MESSAGES = "/v1/messages"
WORKER_HEADER = "x-tokenrouter-worker"


def http_app(
    router: Router, auth: Callable[[], TenantAuth | None], draining: Callable[[], bool]
) -> HttpApp:
    """The ASGI app serving the OpenAI and Anthropic faces, health and metrics (errors on other
    paths in OpenAI's shape, the first face's)."""
    faces = {CHAT_COMPLETIONS: OpenAIFace(), MESSAGES: AnthropicFace()}
    return HttpApp(router, auth, faces, models_body, draining=draining)


async def start_http(
    router: Router,
    auth: Callable[[], TenantAuth | None],
    draining: Callable[[], bool],
    host: str,
    port: int,
    *,
    worker: bool = False,
) -> HttpServer:
    """Binds and starts the HTTP faces on `host:port` (0: a free port).

    `worker`: one of `serve --workers N`: the port is shared (SO_REUSEPORT) and every response
    carries the process id in `x-tokenrouter-worker`.
    """
    app = http_app(router, auth, draining)
    headers = [(WORKER_HEADER, str(os.getpid()))] if worker else []
    return await HttpServer.start(
        app, host, port, router.config.server, reuse_port=worker, headers=headers
    )
