"""The router core: decides and runs requests on the current Runtime; reloads configs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from typing import Any

import structlog

from backends.base import Backend, TextDelta
from router.attempt import Attempt
from router.config import LoadedConfig
from router.errors import (
    BackendUnavailable,
    InvalidArgument,
    RequestFailed,
    ResourceExhausted,
    RouterError,
)
from router.framework import RequestContext
from router.handle import PluginHandle
from router.registry import Registry, default_registry
from router.request_log import RequestLog
from router.resilience import HealthTracker
from router.runtime import Runtime
from router.scheduler import Scheduler
from router.slicing import sliced
from router.state import BackendStats
from router.types import Decision, Request, Usage

log = structlog.get_logger("tokenrouter")


class Router:
    """Decides where requests run and runs them. Create with `await Router.create(loaded)`."""

    def __init__(self, registry: Registry | None = None) -> None:
        self.registry = registry or default_registry()
        # Services that outlive config versions (spend, token-rate accounting), for every plugin.
        self.handle = PluginHandle()
        self.runtime: Runtime
        self._reload_lock = asyncio.Lock()
        self._prober: asyncio.Task[None] | None = None
        self._draining: set[asyncio.Task[None]] = set()
        self._versions: weakref.WeakSet[Runtime] = weakref.WeakSet()  # every live Runtime
        self.request_log: RequestLog | None = None

    @classmethod
    async def create(cls, loaded: LoadedConfig, registry: Registry | None = None) -> Router:
        router = cls(registry)
        router.runtime = await router._build(loaded, None)
        if loaded.config.server.request_log:
            router.request_log = RequestLog(loaded.config.server.request_log)
        router._prober = asyncio.create_task(router._probe_forever())
        return router

    # The current version's parts, for callers that do not care about versions.
    @property
    def config(self):  # type: ignore[no-untyped-def]
        return self.runtime.config

    @property
    def loaded(self) -> LoadedConfig:
        return self.runtime.loaded

    @property
    def scheduler(self) -> Scheduler:
        return self.runtime.scheduler

    @property
    def backends(self) -> dict[str, Backend]:
        return self.runtime.backends

    @property
    def health(self) -> HealthTracker:
        return self.runtime.health

    def views(self):  # type: ignore[no-untyped-def]
        return self.runtime.views()

    async def _build(self, loaded: LoadedConfig, old: Runtime | None) -> Runtime:
        """A runtime for `loaded`, reusing `old`'s unchanged backends and their state."""
        scheduler = Scheduler(loaded, self.registry, self.handle)
        backends: dict[str, Backend] = {}
        stats: dict[str, BackendStats] = {}
        started: list[Backend] = []
        try:
            for name, cfg in loaded.config.backends.items():
                previous = old.backends.get(name) if old else None
                if previous is not None and previous.config == cfg:
                    backends[name], stats[name] = previous, old.stats[name]  # type: ignore[union-attr]
                    continue
                backend = self.registry.create_backend(name, cfg)
                await backend.start()
                started.append(backend)
                backends[name], stats[name] = backend, BackendStats()
        except Exception as exc:
            for backend in started:
                await backend.aclose()
            raise loaded.error(("backends", name), f"cannot start backend: {exc}") from exc
        keep = {n for n in backends if old is not None and old.backends.get(n) is backends[n]}
        health = HealthTracker(backends, loaded.config.health)
        if old is not None:
            health.inherit(old.health, keep)
        runtime = Runtime(loaded, scheduler, backends, stats, health)
        self._versions.add(runtime)
        return runtime

    async def reload(self, loaded: LoadedConfig) -> Runtime:
        """Builds the new version, then swaps atomically; in-flight requests finish on theirs.

        The caller validates first (RouterServer.reload does, fully). Building policies or
        starting new backends may still raise ConfigError; the running config then stays.
        """
        async with self._reload_lock:
            old = self.runtime
            new = await self._build(loaded, old)
            self.runtime = new
            retired = [b for n, b in old.backends.items() if new.backends.get(n) is not b]
            # The old batcher is not closed: requests that began on `old` still place with it;
            # its solver thread ends when the last of them lets go of it.
            for backend in retired:
                task = asyncio.create_task(self._drain(backend))
                self._draining.add(task)
                task.add_done_callback(self._draining.discard)
            log.info(
                "config reloaded",
                config=loaded.source,
                config_version=loaded.version,
                previous_version=old.loaded.version,
                retired=[b.name for b in retired],
            )
            return new

    async def _drain(self, backend: Backend) -> None:
        """Closes a backend removed by a reload once nothing can use it any more: no request is
        admitted to it, and none is running on a version that has it (it could place there)."""
        while backend.admitted or any(
            rt.active and rt.backends.get(backend.name) is backend for rt in list(self._versions)
        ):
            await asyncio.sleep(0.05)
        await backend.aclose()

    async def aclose(self) -> None:
        if self._prober is not None:
            self._prober.cancel()
        self.runtime.batcher.close()
        for task in list(self._draining):
            await task
        for backend in self.runtime.backends.values():
            await backend.aclose()
        if self.request_log is not None:
            await asyncio.to_thread(self.request_log.close)

    async def probe(self) -> None:
        """Probes every backend once, concurrently, and records the outcome."""
        rt = self.runtime
        timeout = rt.config.health.probe_timeout_s

        async def one(name: str, backend: Backend) -> None:
            try:
                await asyncio.wait_for(backend.probe(), timeout)
            except Exception as exc:  # any failure to answer is a failed probe
                rt.health.probe_failed(name, str(exc) or type(exc).__name__)
            else:
                rt.health.probe_ok(name)

        await asyncio.gather(*(one(n, b) for n, b in rt.backends.items()))

    async def _probe_forever(self) -> None:
        while True:
            await self.probe()
            await asyncio.sleep(self.runtime.config.health.probe_interval_s)

    async def route(self, request: Request) -> Decision:
        """The decision only."""
        started = time.perf_counter()
        try:
            with self.runtime.in_use() as rt:
                decision, _ = await rt.batcher.place(await rt.context(request), admit=False)
        except RouterError as exc:
            self._log("route", request, started, error=exc)
            raise
        self._log("route", request, started, backend=decision.backend)
        return decision

    async def route_batch(self, requests: Sequence[Request]) -> list[Decision | RouterError]:
        """Places a group of requests jointly; one decision or error per request, in order.

        The contexts are built in slices between loop turns (router/slicing.py) and the batcher
        evaluates them likewise, so a large batch never stalls the other calls."""
        with self.runtime.in_use() as rt:  # a reload's drain waits for it
            contexts = []
            async for i, request in sliced(enumerate(requests)):
                try:
                    contexts.append(await rt.context(request))
                except InvalidArgument as exc:
                    raise exc.within(f"requests[{i}].") from None
            return await rt.batcher.solve_group(contexts)

    async def generate(self, request: Request) -> AsyncIterator[Decision | TextDelta | Usage]:
        """Yields a decision, text deltas and the usage; re-places before the first token fails.

        If the chosen backend fails before its first token (refused, 5xx, 429, timeout, full),
        the request is placed again without it (privacy and budgets still binding) and a new
        decision is yielded, up to `fallback.max_attempts` backends within the deadline. After
        the first token a failure ends the stream with UNAVAILABLE: never a silent truncation.

        Every admission is settled or released exactly once: a finished stream settles its usage;
        one that ends after its first token (failure, cancel, deadline) settles the prompt and the
        tokens produced so far; one that ends before releases everything.
        """
        with self.runtime.in_use() as rt:
            async with contextlib.aclosing(self._generate(rt, request)) as events:
                async for event in events:
                    yield event

    async def _generate(
        self, rt: Runtime, request: Request
    ) -> AsyncIterator[Decision | TextDelta | Usage]:
        started = time.perf_counter()
        usage = Usage()
        ctx = None
        try:
            ctx = await rt.context(request)
            last: RouterError = RouterError("no attempt")  # the latest backend failure
            for attempt in range(1, rt.config.fallback.max_attempts + 1):
                try:
                    decision, admission = await rt.batcher.place(ctx, admit=True)
                except RouterError as exc:
                    if attempt == 1:
                        raise
                    raise RequestFailed(
                        last.code,
                        f"{last} (tried {', '.join(usage.backends_tried)}; "
                        f"no other backend: {exc})",
                    ) from None
                usage.backend = decision.backend
                usage.backends_tried.append(decision.backend)
                run = Attempt(rt, decision, request, started, usage)
                try:  # from here on, every way out settles or releases the admission
                    yield decision
                    async for event in run.stream():
                        yield event
                except (BackendUnavailable, ResourceExhausted) as exc:
                    self._end(run, admission, "error")
                    last = self._backend_failed(rt, decision.backend, exc, run.streaming)
                    left = request.time_left()
                    if left is not None and left <= 0:
                        raise
                    log.info(
                        "fallback",
                        request_id=request.request_id,
                        failed=decision.backend,
                        error=str(exc),
                        attempt=attempt,
                    )
                    ctx = replace(ctx, excluded={**ctx.excluded, decision.backend: str(exc)})
                    continue
                except BaseException:
                    self._end(run, admission, "cancelled")
                    raise
                admission.settle(usage)
                rt.health.success(decision.backend)
                break
            else:
                raise RequestFailed(last.code, f"{last} (tried {', '.join(usage.backends_tried)})")
        except BaseException as exc:
            if not usage.total_ms:
                usage.total_ms = (time.perf_counter() - started) * 1e3
            self._log("generate", request, started, usage=usage, error=exc, ctx=ctx)
            raise
        self._log("generate", request, started, usage=usage, ctx=ctx)

    @staticmethod
    def _end(run: Attempt, admission: Any, reason: str) -> None:
        """Ends an attempt that did not finish normally: charges what it produced once its first
        token went out (or all of it, if its usage was complete), else gives everything back."""
        if run.streaming or run.finished:
            run.end_early(reason)
            admission.settle(run.usage)
        else:
            admission.release()

    @staticmethod
    def _backend_failed(rt: Runtime, backend: str, exc: RouterError, streamed: bool) -> RouterError:
        """Records the failure; re-raises it when tokens were already streamed."""
        if isinstance(exc, BackendUnavailable):
            rt.health.failure(backend, exc.reason, exc.retry_after_s)
        if streamed:
            raise RequestFailed(
                "UNAVAILABLE", f"{exc} after the stream had started; the output is incomplete"
            ) from exc
        return exc

    def _log(
        self,
        kind: str,
        request: Request,
        started: float,
        *,
        usage: Usage | None = None,
        backend: str = "",
        error: BaseException | None = None,
        ctx: RequestContext | None = None,
    ) -> None:
        """One structured line per request (fields built only when the level is on), and the
        request-log record for a Generate."""
        cancelled = isinstance(error, asyncio.CancelledError | GeneratorExit)
        status = (
            "OK"
            if error is None
            else "CANCELLED"
            if cancelled
            else getattr(error, "code", "INTERNAL")
        )
        elapsed_s = time.perf_counter() - started
        if kind == "generate" and self.request_log is not None and usage is not None:
            self.request_log.record(request, usage, ctx, status, time.time() - elapsed_s)
        level = logging.WARNING if status not in ("OK", "CANCELLED") else logging.INFO
        if not log.is_enabled_for(level):
            return
        fields: dict[str, object] = {
            "request_id": request.request_id,
            "tenant": request.tenant,
            "backend": usage.backend if usage else backend,
            "latency_ms": round(elapsed_s * 1e3, 3),
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
        if status == "OK":
            log.info(kind, **fields)
        elif cancelled:
            log.info(kind, status=status, **fields)
        else:
            log.warning(kind, status=status, error=str(error), **fields)
