"""The Router facade: lifecycle (create, reload and drain, aclose) and the request entry points.

A request runs on the Runtime (router/runtime/context.py) current when it arrived. The parts live in
their own modules: generation with fallback in router/runtime/generation.py, the probe loop in
router/runtime/probing.py, the end-of-request log line and record in
router/runtime/request_logging.py, admission in router/runtime/admission.py.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator, Sequence
from typing import Any

import structlog

from router.config import LoadedConfig
from router.core.backend import Backend, TextDelta
from router.core.errors import InvalidArgument, RouterError
from router.core.framework import BackendView, RequestContext
from router.core.handle import PluginHandle
from router.core.registry import Registry, default_registry
from router.core.types import Decision, Request, Usage
from router.observability import Metrics, tracing
from router.placement.pipeline import PolicyPipeline
from router.placement.slicing import sliced
from router.predict import refresh
from router.predict.model import load_for
from router.runtime import generation, probing, request_logging
from router.runtime.backend_stats import BackendStats
from router.runtime.context import INLINE_CHARS, Runtime
from router.runtime.request_log import RequestLog
from router.runtime.resilience import HealthTracker
from router.state.shared import SharedState

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
        self._refresher: asyncio.Task[None] | None = None
        self._draining: set[asyncio.Task[None]] = set()
        self._versions: weakref.WeakSet[Runtime] = weakref.WeakSet()  # every live Runtime
        self.request_log: RequestLog | None = None
        self.shared: SharedState | None = None  # state in Redis (`state.backend: redis`)
        # Prometheus metrics (router/observability/), kept across reloads; state read at scrape.
        self.metrics = Metrics(
            lambda: getattr(self, "runtime", None), self.handle.token_window, lambda: self.shared
        )

    @classmethod
    async def create(cls, loaded: LoadedConfig, registry: Registry | None = None) -> Router:
        router = cls(registry)
        if loaded.config.state.backend == "redis":
            try:
                router.shared = SharedState(loaded.config.state)
            except ValueError as exc:  # e.g. state.url_env names an unset variable
                raise loaded.error(("state",), str(exc)) from None
            router.handle = router.shared.handle(router.handle.token_window)
            await router.shared.start()
        try:
            router.runtime = await router._build(loaded, None)
        except BaseException:
            if router.shared is not None:
                await router.shared.aclose()
            raise
        if loaded.config.server.request_log:
            router.request_log = RequestLog(loaded.config.server.request_log)
        router._prober = asyncio.create_task(probing.probe_forever(lambda: router.runtime))
        router._refresher = asyncio.create_task(refresh.refresh_forever(lambda: router.config))
        return router

    # The current version's parts, for callers that do not care about versions.
    @property
    def config(self):  # type: ignore[no-untyped-def]
        return self.runtime.config

    @property
    def loaded(self) -> LoadedConfig:
        return self.runtime.loaded

    @property
    def pipeline(self) -> PolicyPipeline:
        return self.runtime.pipeline

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
        predictors = await asyncio.to_thread(load_for, loaded)
        pipeline = PolicyPipeline(loaded, self.registry, self.handle, predictors)
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
        views = [BackendView(n, b.config) for n, b in backends.items()]
        shared = self.shared
        health = HealthTracker(
            backends,
            loaded.config.health,
            groups=pipeline.class_groups(views),
            shared=shared.health if shared else None,
        )
        if old is not None:
            health.inherit(old.health, keep)
        if shared is not None:
            shared.health.track(backends)
        runtime = Runtime(
            loaded, pipeline, backends, stats, health, slots=shared.slots if shared else None
        )
        self._versions.add(runtime)
        self.metrics.learn(runtime)
        return runtime

    async def reload(self, loaded: LoadedConfig) -> Runtime:
        """Builds the new version, then swaps atomically; in-flight requests finish on theirs.

        The caller validates first (RouterServer.reload does, fully). Building policies or
        starting new backends may still raise ConfigError; the running config then stays.
        """
        async with self._reload_lock:
            old = self.runtime
            if loaded.config.state != old.config.state:
                log.warning(
                    "state: a change takes effect at the next restart; the running state stays",
                    config=loaded.source,
                )
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
        if self._refresher is not None:
            self._refresher.cancel()
        self.runtime.batcher.close()
        for task in list(self._draining):
            await task
        for backend in self.runtime.backends.values():
            await backend.aclose()
        if self.request_log is not None:
            await asyncio.to_thread(self.request_log.close)
        if self.shared is not None:
            await self.shared.aclose()

    async def probe(self) -> None:
        """Probes every backend of the current version once, concurrently
        (router/runtime/probing.py)."""
        await probing.probe(self.runtime)

    async def route(self, request: Request) -> Decision:
        """The decision only."""
        started = time.perf_counter()
        try:
            with self.runtime.in_use() as rt:
                placing = rt.batcher.place(await rt.context(request), admit=False)
                if (trace := tracing.current()) is not None:
                    placing = trace.placement(placing, request, 1)
                decision, _ = await placing
        except RouterError as exc:
            self._log("route", request, started, error=exc)
            raise
        self.metrics.decided(decision)
        self._log("route", request, started, backend=decision.backend)
        return decision

    async def route_batch(self, requests: Sequence[Request]) -> list[Decision | RouterError]:
        """Places a group of requests jointly; one decision or error per request, in order.

        The contexts are built in slices between loop turns (router/placement/slicing.py) and
        the batcher evaluates them likewise, so a large batch never stalls the other calls."""
        with self.runtime.in_use() as rt:  # a reload's drain waits for it
            contexts = []
            # Short prompts that add up to a long text are scanned off the loop too.
            offload = sum(r.chars() for r in requests) > INLINE_CHARS
            async for i, request in sliced(enumerate(requests)):
                try:
                    contexts.append(await rt.context(request, offload))
                except InvalidArgument as exc:
                    raise exc.within(f"requests[{i}].") from None
            results = await rt.batcher.solve_group(contexts)
            for result in results:
                if isinstance(result, Decision):
                    self.metrics.decided(result)
            return results

    def generate(self, request: Request) -> AsyncIterator[Decision | TextDelta | Usage]:
        """Yields a decision, text deltas and the usage; re-places before the first token fails.

        If the chosen backend fails before its first token (refused, 5xx, 429, timeout, full),
        the request is placed again without it (privacy and budgets still binding) and a new
        decision is yielded, up to `fallback.max_attempts` backends within the deadline. After
        the first token a failure ends the stream with UNAVAILABLE: never a silent truncation.
        Every admission is settled or released exactly once (router/runtime/generation.py).
        The stream runs on the version current now; close it (contextlib.aclosing) when
        leaving it early.
        """
        observe = self.request_log is not None
        return generation.generate(self.runtime, request, self._log, self.metrics, observe)

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
        attempts: list[dict[str, Any]] | None = None,
    ) -> None:
        """Records the end of a request (router/runtime/request_logging.py) and counts it in the
        metrics (router/observability/metrics.py)."""
        self.metrics.request_ended(
            kind,
            request,
            started,
            request_logging.status_of(error),
            usage=usage,
            backend=backend,
            ctx=ctx,
        )
        request_logging.request_ended(
            kind,
            request,
            started,
            request_log=self.request_log,
            log_content=self.config.server.log_content,
            usage=usage,
            backend=backend,
            error=error,
            ctx=ctx,
            attempts=attempts,
        )
