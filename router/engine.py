"""The router core: holds the backends and the scheduler, decides and runs requests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence

import structlog

from backends import create_backend
from backends.base import Backend, Finish, TextDelta
from router import estimates
from router.batcher import Batcher
from router.config import LoadedConfig
from router.errors import InvalidArgument, RouterError
from router.framework import BackendView, RequestContext, Reservation, Reserver
from router.registry import Registry, default_registry
from router.scheduler import Scheduler
from router.state import BackendStats
from router.types import Decision, Request, Usage

log = structlog.get_logger("tokenrouter")

# Prompts longer than this are tokenized and scanned in a worker thread, not on the event loop.
_INLINE_CHARS = 4096


def _chars(request: Request) -> int:
    return sum(len(m.content) for m in request.messages)


class Admission:
    """A generation admitted to a backend: its in-flight count and its reservations."""

    def __init__(self, active: dict[str, int], backend: str, held: list[Reservation]) -> None:
        self._active = active
        self._backend = backend
        self._held: list[Reservation] | None = held
        active[backend] += 1

    def settle(self, usage: Usage) -> None:
        """The generation finished: charge what it really used."""
        for reservation in self._take():
            reservation.settle(usage)

    def release(self) -> None:
        """The generation failed or was cancelled: give everything back."""
        for reservation in self._take():
            reservation.release()

    def _take(self) -> list[Reservation]:
        held, self._held = self._held, None
        if held is None:
            return []
        self._active[self._backend] -= 1
        return held


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
        self.active: dict[str, int] = dict.fromkeys(self.backends, 0)
        sched = self.config.scheduler
        self.batcher = Batcher(
            self.scheduler,
            self.views,
            self._admit,
            max_batch=sched.max_batch,
            window_ms=sched.batch_window_ms,
            time_limit_ms=sched.solver_time_limit_ms,
        )

    @classmethod
    async def create(cls, loaded: LoadedConfig, registry: Registry | None = None) -> Router:
        router = cls(loaded, registry)
        for backend in router.backends.values():
            await backend.start()
        return router

    async def aclose(self) -> None:
        self.batcher.close()
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
                    in_flight=self.active[name],
                    queued=load.queued,
                    capacity=load.capacity,
                    limit=load.limit,
                    observed_ttft_ms=stats.ttft_ms,
                    observed_tokens_per_s=stats.tokens_per_s,
                    observed_prefill_tokens_per_s=stats.prefill_tokens_per_s,
                    observed_request_ms=stats.request_ms,
                )
            )
        return out

    async def context(self, request: Request) -> RequestContext:
        """Computes the per-request state every policy reads, and checks request-wide limits."""
        self.scheduler.profile_for(request.profile)
        views = self.views()
        if request.model and not any(request.model in v.models for v in views):
            known = ", ".join(sorted({m for v in views for m in v.models}))
            raise InvalidArgument("model", f"unknown model {request.model!r} (known: {known})")
        prompt_tokens = await self._count_prompt_tokens(request)
        largest = max(v.config.context_window for v in views)
        if request.max_tokens >= largest:
            raise InvalidArgument(
                "max_tokens",
                f"{request.max_tokens} does not fit any backend (largest context {largest})",
            )
        if prompt_tokens + request.max_tokens > largest:
            raise InvalidArgument(
                "messages",
                f"prompt of ~{prompt_tokens} tokens + max_tokens {request.max_tokens} exceeds "
                f"every backend's context window (largest {largest})",
            )
        ctx = RequestContext(request=request, prompt_tokens=prompt_tokens, privacy=request.privacy)
        if _chars(request) <= _INLINE_CHARS:
            return self.scheduler.prepare(ctx)
        return await asyncio.to_thread(self.scheduler.prepare, ctx)  # content scans of long prompts

    async def _count_prompt_tokens(self, request: Request) -> int:
        for backend in self.backends.values():
            if _chars(request) <= _INLINE_CHARS:
                count = backend.count_prompt_tokens(request.messages)
            else:
                count = await asyncio.to_thread(backend.count_prompt_tokens, request.messages)
            if count is not None:
                return count
        return estimates.prompt_tokens_estimate(request.messages)

    def _admit(self, ctx: RequestContext, decision: Decision) -> Admission:
        """Reserves budget and rate for a generation placed on `decision.backend`."""
        view = next(v for v in self.views() if v.name == decision.backend)
        held: list[Reservation] = []
        try:
            for step in self.scheduler.profile_for(ctx.request.profile).of(Reserver):
                if (reservation := step.policy.reserve(ctx, view)) is not None:
                    held.append(reservation)
        except RouterError:
            for reservation in held:
                reservation.release()
            raise
        return Admission(self.active, decision.backend, held)

    async def route(self, request: Request) -> Decision:
        """The decision only."""
        started = time.perf_counter()
        try:
            decision, _ = await self.batcher.place(await self.context(request), admit=False)
        except RouterError as exc:
            self._log("route", request, started, error=exc)
            raise
        self._log("route", request, started, backend=decision.backend)
        return decision

    async def route_batch(self, requests: Sequence[Request]) -> list[Decision | RouterError]:
        """Places a group of requests jointly; one decision or error per request, in order."""
        contexts = []
        for i, request in enumerate(requests):
            try:
                contexts.append(await self.context(request))
            except InvalidArgument as exc:
                raise exc.within(f"requests[{i}].") from None
        return await self.batcher.solve_group(contexts)

    async def generate(self, request: Request) -> AsyncIterator[Decision | TextDelta | Usage]:
        """Yields the decision, then text deltas, then the usage."""
        started = time.perf_counter()
        usage = Usage()
        admission: Admission | None = None
        try:
            decision, admission = await self.batcher.place(await self.context(request), True)
            yield decision
            usage.backend = decision.backend
            usage.backends_tried.append(decision.backend)
            usage.prompt_tokens = decision.prompt_tokens
            async for event in self._stream(decision, request, started, usage):
                yield event
        except BaseException as exc:
            if admission is not None:
                admission.release()
            usage.total_ms = (time.perf_counter() - started) * 1e3
            if usage.backend and isinstance(exc, RouterError):
                self.stats[usage.backend].failures += 1
            self._log("generate", request, started, usage=usage, error=exc)
            raise
        admission.settle(usage)
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
                self.stats[backend.name].observe(
                    event.prompt_tokens,
                    usage.ttft_ms,
                    event.completion_tokens,
                    decode_s,
                    usage.total_ms,
                )
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
            log.warning(kind, status=getattr(error, "code", "INTERNAL"), error=str(error), **fields)
