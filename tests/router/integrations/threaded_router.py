"""A real router server on a free port, run on an event loop of its own thread.

LangChain's standard suites call the blocking API (invoke, stream) from synchronous tests, so
the server cannot live on the test's event loop; it runs on a loop in a daemon thread instead,
and both sync and async clients reach it over real gRPC.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from router.api.server import RouterServer
from tests.conftest import loaded


class ThreadedRouter:
    """`with ThreadedRouter(config) as router: router.target` is a serving router's host:port."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: RouterServer | None = None
        self.target = ""

    def __enter__(self) -> ThreadedRouter:
        self.thread.start()
        start = RouterServer.start(loaded(self.config), host="127.0.0.1", port=0)
        self.server = asyncio.run_coroutine_threadsafe(start, self.loop).result(timeout=300)
        self.target = f"127.0.0.1:{self.server.port}"
        return self

    def __exit__(self, *exc: object) -> None:
        if self.server is not None:
            stop = self.server.stop(grace=0)
            asyncio.run_coroutine_threadsafe(stop, self.loop).result(timeout=60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=60)
        self.loop.close()
