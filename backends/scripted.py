"""A scripted backend: streams configured text word by word, with configurable delays.

For demos, load tests and what-if replays, and as a second and third backend in tests: it
needs no model or server. Token counts are words; prompt tokens are estimated.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Literal

from pydantic import Field

from router.core.backend import Backend, Finish, Load, StreamEvent, TextDelta
from router.core.backend_config import BackendCommon, Feature
from router.core.errors import ResourceExhausted
from router.core.estimates import prompt_tokens_estimate
from router.core.types import Request, Tier


class ScriptedConfig(BackendCommon):
    """A scripted backend that streams fixed text: for demos, load tests and replays."""

    type: Literal["scripted"]
    tier: Tier = Tier.CLOUD_GPU
    text: str = "This is a scripted reply from tokenrouter."
    ttft_ms: float = Field(0.0, ge=0, description="delay before the first token")
    token_interval_ms: float = Field(0.0, ge=0, description="delay between tokens")
    max_concurrency: int = Field(0, ge=0, description="requests at once; 0: unlimited")
    features: list[Feature] = Field(default_factory=lambda: ["streaming", "tools"])


class ScriptedBackend(Backend):
    config_model = ScriptedConfig
    config: ScriptedConfig

    def __init__(self, name: str, config: ScriptedConfig) -> None:
        super().__init__(name, config)
        words = config.text.split()
        self._tokens = [w if i == 0 else " " + w for i, w in enumerate(words)] or [""]
        self._running = 0

    def load(self) -> Load:
        limit = self.config.max_concurrency
        return Load(in_flight=self._running, capacity=limit, limit=limit)

    async def generate(self, request: Request) -> AsyncIterator[StreamEvent]:
        limit = self.config.max_concurrency
        if limit and self._running >= limit:
            raise ResourceExhausted(f"backend {self.name}: {limit} requests already running")
        self._running += 1
        try:
            if self.config.ttft_ms:
                await asyncio.sleep(self.config.ttft_ms / 1e3)
            n = min(request.max_tokens, len(self._tokens))
            for i in range(n):
                if i and self.config.token_interval_ms:
                    await asyncio.sleep(self.config.token_interval_ms / 1e3)
                yield TextDelta(self._tokens[i])
            reason = "stop" if n == len(self._tokens) else "length"
            yield Finish(prompt_tokens_estimate(request), n, reason)
        finally:
            self._running -= 1
