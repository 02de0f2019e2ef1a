"""The router core: holds the backends and the scheduler, decides and runs requests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import structlog

from backends import create_backend
from backends.base import Backend, Finish, TextDelta
from router import estimates
from router.config import LoadedConfig
from router.errors import InvalidArgument, RouterError
from router.framework import BackendView, RequestContext
from router.registry import Registry, default_registry
from router.scheduler import Scheduler
from router.state import BackendStats
from router.types import Decision, Request, Usage

log = structlog.get_logger("tokenrouter")

# Prompts longer than this are tokenized in a worker thread rather than on the event loop.
_INLINE_TOKENIZE_CHARS = 4096


class Router:
    """Decides where requests run and runs them. Create with `await Router.create(loaded)`."""

    def __init__(self, loaded: LoadedConfig, registry: Registry | None = None) -> None:
        self.loaded = loaded
        self.config = loaded.config
        self.scheduler = Scheduler(loaded, registry or default_registry())
        self.backends: dict[str, Backend] = {
            name: create_backend(name, cfg) for name, cfg in self.config.backends.items()
        }
        self.stats: dict[str, BackendStats] = {name: BackendStats() for name in self.backends}

    @classmethod
    async def create(cls, loaded: LoadedConfig, registry: Registry | None = None) -> Router:
        router = cls(loaded, registry)
        for backend in router.backends.values():
            await backend.start()
        return router

    async def aclose(self) -> None:
        for backend in self.backends.values():
            await backend.aclose()

    def views(self) -> list[BackendView]:
        """Current snapshots of every backend, in config order."""
        out = []
        for name, backend in self.backends.items():
            load, stats = backend.load(), self.stats[name]
            out.append(
                BackendView(
                    name=name,
                    config=backend.config,
                    in_flight=load.in_flight,
                    queued=load.queued,
                    capacity=load.capacity,
                    observed_ttft_ms=stats.ttft_ms,
                    observed_tokens_per_s=stats.tokens_per_s,
                )
            )
        return out

    async def context(self, request: Request) -> RequestContext:
        """Computes the per-request state every policy reads, and checks request-wide limits."""
        self.scheduler.profile_for(request.profile)
        if request.model and not any(request.model in v.models for v in self.views()):
            known = sorted({m for v in self.views() for m in v.models})
            raise InvalidArgument(
                "model", f"unknown model {request.model!r} (known: {', '.join(known)})"
            )
        prompt_tokens = await self._count_prompt_tokens(request)
        largest = max(b.config.context_window for b in self.backends.values())
        if request.max_tokens >= largest:
            raise InvalidArgument(
                "max_tokens",
                f"{request.max_tokens} does not fit any backend (largest context {largest})",
            )
        if prompt_tokens + request.max_tokens > largest:
            raise InvalidArgument(
                "messages",
                f"prompt of ~{prompt_tokens} tokens + max_tokens {request.max_tokens} exceeds "
                "every "
                f"backend's context window (largest {largest})",
            )
        return RequestContext(request=request, prompt_tokens=prompt_tokens, privacy=request.privacy)

    async def _count_prompt_tokens(self, request: Request) -> int:
        chars = sum(len(m.content) for m in request.messages)
        for backend in self.backends.values():
            if chars <= _INLINE_TOKENIZE_CHARS:
                count = backend.count_prompt_tokens(request.messages)
            else:
                count = await asyncio.to_thread(backend.count_prompt_tokens, request.messages)
            if count is not None:
                return count
        return chars // 4 + 4 * len(request.messages)

    async def route(self, request: Request) -> Decision:
        """The decision only."""
        started = time.perf_counter()
        try:
            decision = self.scheduler.decide(await self.context(request), self.views())
        except RouterError as exc:
            self._log("route", request, started, error=exc)
            raise
        self._log("route", request, started, backend=decision.backend)
        return decision

    async def generate(self, request: Request) -> AsyncIterator[Decision | TextDelta | Usage]:
        """Yields the decision, then text deltas, then the usage."""
        started = time.perf_counter()
        usage = Usage()
        try:
            decision = self.scheduler.decide(await self.context(request), self.views())
            yield decision
            usage.backend = decision.backend
            usage.backends_tried.append(decision.backend)
            usage.prompt_tokens = decision.prompt_tokens
            async for event in self._stream(decision, request, started, usage):
                yield event
        except BaseException as exc:
            usage.total_ms = (time.perf_counter() - started) * 1e3
            if usage.backend and isinstance(exc, RouterError):
                self.stats[usage.backend].failures += 1
            self._log("generate", request, started, usage=usage, error=exc)
            raise
        self._log("generate", request, started, usage=usage)

    async def _stream(
        self, decision: Decision, request: Request, started: float, usage: Usage
    ) -> AsyncIterator[TextDelta | Usage]:
        backend = self.backends[decision.backend]
        first_token_at = 0.0
        async for event in backend.generate(request):
            if isinstance(event, TextDelta):
                if not first_token_at:
                    first_token_at = time.perf_counter()
                    usage.ttft_ms = (first_token_at - started) * 1e3
                yield event
            elif isinstance(event, Finish):
                now = time.perf_counter()
                usage.prompt_tokens = event.prompt_tokens
                usage.completion_tokens = event.completion_tokens
                usage.finish_reason = event.finish_reason
                usage.cost_usd = estimates.cost_usd(
                    backend.config.price, event.prompt_tokens, event.completion_tokens
                )
                usage.total_ms = (now - started) * 1e3
                decode_s = now - first_token_at if first_token_at else 0.0
                self.stats[backend.name].observe(usage.ttft_ms, event.completion_tokens, decode_s)
                yield usage

    def _log(
        self,
        kind: str,
        request: Request,
        started: float,
        *,
        usage: Usage | None = None,
        backend: str = "",
        error: BaseException | None = None,
    ) -> None:
        fields: dict[str, object] = {
            "request_id": request.request_id,
            "tenant": request.tenant,
            "backend": usage.backend if usage else backend,
            "latency_ms": round((time.perf_counter() - started) * 1e3, 3),
        }
        if usage is not None:
            fields.update(
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                ttft_ms=round(usage.ttft_ms, 3),
                cost_usd=usage.cost_usd,
                finish_reason=usage.finish_reason,
            )
        if self.config.server.log_content:
            fields["messages"] = [{"role": m.role, "content": m.content} for m in request.messages]
        if error is None:
            log.info(kind, **fields)
        elif isinstance(error, asyncio.CancelledError | GeneratorExit):
            log.info(kind, status="CANCELLED", **fields)
        else:
            code = getattr(error, "code", "INTERNAL")
            log.warning(kind, status=code, error=str(error), **fields)
