"""What every HTTP backend has: a lazily made keep-alive client, a concurrency limit and load."""

from __future__ import annotations

import httpx

from backends.http_common import ConcurrencyLimit, make_client
from router.core.backend import Backend, Load
from router.core.backend_config import HttpBackendCommon


class HttpBackend(Backend):
    """Base for backends reached over HTTP; subclasses implement `generate` (and `probe`)."""

    config: HttpBackendCommon

    def __init__(self, name: str, config: HttpBackendCommon) -> None:
        super().__init__(name, config)
        self.base_url = config.base_url.rstrip("/")
        self.metrics: dict[str, float] = {}  # load signals read by probe(), e.g. "waiting"
        self._limit = ConcurrencyLimit(name, config.max_concurrency)
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        self._http()

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = make_client(self.config)
        return self._client

    def load(self) -> Load:
        limit = self.config.max_concurrency
        waiting = int(self.metrics.get("waiting", 0))
        return Load(in_flight=self._limit.running, queued=waiting, capacity=limit, limit=limit)
