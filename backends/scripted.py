"""A scripted backend: streams configured text word by word, with configurable delays.

For demos, load tests and what-if replays, and as a second and third backend in tests: it
needs no model or server. Token counts are words; prompt tokens are estimated.

With `tool_calls` scripted, a request that offers tools (tool_choice not `none`) and does not
end with a tool result is answered with those calls (only those naming an offered tool, or the
one tool a named tool_choice forces), their arguments streamed in fragments, and finish reason
`tool_calls`; after a tool result it answers with its text, as a model would.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from router.core.backend import Backend, Finish, Load, StreamEvent, TextDelta, ToolCallDelta
from router.core.backend_config import BackendCommon, Feature
from router.core.errors import ResourceExhausted
from router.core.estimates import prompt_tokens_estimate
from router.core.types import Request, Tier


class ScriptedToolCall(BaseModel):
    """A tool call the scripted backend answers with: the tool's name and its arguments."""

    model_config = ConfigDict(extra="forbid")
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class ScriptedConfig(BackendCommon):
    """A scripted backend that streams fixed text: for demos, load tests and replays."""

    type: Literal["scripted"]
    tier: Tier = Tier.CLOUD_GPU
    text: str = "This is a scripted reply from tokenrouter."
    ttft_ms: float = Field(0.0, ge=0, description="delay before the first token")
    token_interval_ms: float = Field(0.0, ge=0, description="delay between tokens")
    max_concurrency: int = Field(0, ge=0, description="requests at once; 0: unlimited")
    features: list[Feature] = Field(default_factory=lambda: ["streaming", "tools"])
    tool_calls: list[ScriptedToolCall] = Field(
        default_factory=list, description="calls to answer with when the request offers tools"
    )


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
            if calls := self._calls_for(request):
                async for event in self._stream_calls(request, calls):
                    yield event
                return
            n = min(request.max_tokens, len(self._tokens))
            for i in range(n):
                if i and self.config.token_interval_ms:
                    await asyncio.sleep(self.config.token_interval_ms / 1e3)
                yield TextDelta(self._tokens[i])
            reason = "stop" if n == len(self._tokens) else "length"
            yield Finish(prompt_tokens_estimate(request), n, reason)
        finally:
            self._running -= 1

    def _calls_for(self, request: Request) -> list[ScriptedToolCall]:
        choice = request.tool_choice
        if not request.tools or choice.mode == "none" or not self.config.tool_calls:
            return []
        if request.messages[-1].role == "tool":
            return []  # the tool answered: now the text
        offered = {choice.name} if choice.mode == "tool" else {t.name for t in request.tools}
        calls = [c for c in self.config.tool_calls if c.name in offered]
        return calls[:1] if request.parallel_tool_calls is False else calls

    async def _stream_calls(
        self, request: Request, calls: list[ScriptedToolCall]
    ) -> AsyncIterator[StreamEvent]:
        """Each call as fragments: id and name first, then its arguments in three pieces."""
        tokens = 0
        for index, call in enumerate(calls):
            call_id = f"call_{request.request_id[:16]}_{index}"
            yield TextDelta("", 1, (ToolCallDelta(index, call_id, call.name, ""),))
            args = json.dumps(call.arguments)
            step = max(1, -(-len(args) // 3))
            for i in range(0, len(args), step):
                if self.config.token_interval_ms:
                    await asyncio.sleep(self.config.token_interval_ms / 1e3)
                yield TextDelta("", 1, (ToolCallDelta(index, "", "", args[i : i + step]),))
                tokens += 1
            tokens += 1
        yield Finish(prompt_tokens_estimate(request), tokens, "tool_calls")
