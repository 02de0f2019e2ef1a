"""What every HTTP backend has: a lazily made keep-alive pool, a concurrency limit and load."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

from backends.http_common import ConcurrencyLimit
from backends.http_stream import make_client
from backends.wire import Pool
from router.core.backend import Backend, Load
from router.core.backend_config import HttpBackendCommon


class HttpBackend(Backend):
    """Base for backends reached over HTTP; subclasses implement `generate` (and `probe`)."""

    config: HttpBackendCommon

    def __init__(self, name: str, config: HttpBackendCommon) -> None:
        super().__init__(name, config)
        self.base_url = config.base_url.rstrip("/")
        self.base_path = urllib.parse.urlsplit(self.base_url).path  # paths are sent absolute
        self.metrics: dict[str, float] = {}  # load signals read by probe(), e.g. "waiting"
        self._limit = ConcurrencyLimit(name, config.max_concurrency)
        self._client: Pool | None = None

    async def start(self) -> None:
        self._http()

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _http(self) -> Pool:
        if self._client is None:
            self._client = make_client(self.config)
        return self._client

    def load(self) -> Load:
        limit = self.config.max_concurrency
        waiting = int(self.metrics.get("waiting", 0))
        return Load(in_flight=self._limit.running, queued=waiting, capacity=limit, limit=limit)


def json_body(doc: dict[str, Any]) -> bytes:
    """A request body as compact JSON (ASCII: a lone surrogate cannot break the encoding)."""
    return json.dumps(doc, separators=(",", ":")).encode()
