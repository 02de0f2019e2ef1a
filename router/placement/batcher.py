"""Micro-batching: requests that arrive together are placed jointly, with no timer.

The first request of a burst schedules a placement for the next turn of the event loop; every
request that arrives before it runs joins the batch, and so does every request that arrives
while a batch is being solved (the solve runs in a worker thread). A lone request therefore waits
one loop turn, never a timer; a batch that needs no solver thread is placed in a plain callback
on that turn, with no task. `batch_window_ms` > 0 makes each placement wait that long first,
trading latency for larger joint placements; `max_batch` bounds a batch.

Admission (budget and rate reservations, in-flight counts) happens right after the solve and
before the next batch is planned, so a placement never sees a stale view of its predecessors.

Every admission is handed to its caller or released (`release()` on the admitted object),
whatever the interleaving: a caller cancelled in the very loop turn its result is set would
otherwise never see it. Every entry of a batch gets a result or an error: an admit function that
raises something other than a RouterError fails only its own entry, with INTERNAL and no detail.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import structlog

from router.core.errors import RequestFailed, RouterError
from router.core.framework import BackendView, RequestContext
from router.core.types import Decision
from router.placement import placement, solver
from router.placement.pipeline import PolicyPipeline
from router.placement.slicing import sliced

# Rows (requests x backends) of a RouteBatch group the predictors score on the loop; a larger
# group's prediction (about a microsecond a row) runs in a worker thread.
PREDICT_INLINE_ROWS = 1024

Admit = Callable[[RequestContext, Decision], Any]  # returns None or an object with release()

log = structlog.get_logger("tokenrouter")


def _release(admission: Any) -> None:
    """Gives back an admission nobody will use."""
    if admission is not None:
        admission.release()


@dataclass(slots=True)
class _Entry:
    ctx: RequestContext
    admit: bool
    future: asyncio.Future[tuple[Decision, Any]]


class Batcher:
    def __init__(
        self,
        pipeline: PolicyPipeline,
        views: Callable[[], Sequence[BackendView]],
        admit: Admit,
        *,
        max_batch: int = 256,
        window_ms: float = 0.0,
        time_limit_ms: float = 50.0,
    ) -> None:
        self._pipeline = pipeline
        self._views = views
        self._admit = admit
        self._max_batch = max_batch
        self._window_s = window_ms / 1e3
        self._time_limit_s = time_limit_ms / 1e3
        self._pending: list[_Entry] = []
        self._draining = False
        self._drainer: asyncio.Future[None] | None = None
        self._ids = itertools.count(1)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="solver")

    async def place(self, ctx: RequestContext, admit: bool) -> tuple[Decision, Any]:
        """Places one request (jointly with whatever arrives with it); admits it if asked."""
        loop = asyncio.get_running_loop()
        entry = _Entry(ctx, admit, loop.create_future())
        self._pending.append(entry)
        if not self._draining:
            self._draining = True
            # Both run on the loop's next turn: whatever arrives before then (the rest of a
            # burst) joins this batch. Without a window the placement is a plain callback: a
            # batch that needs no solver thread costs no task.
            if self._window_s:
                self._drainer = asyncio.ensure_future(self._drain())  # held: weakly kept
            else:
                loop.call_soon(self._drain_now)
        try:
            return await entry.future
        except BaseException:
            # Cancelled in the turn the result was set: the admission is ours to give back.
            future = entry.future
            if future.done() and not future.cancelled() and future.exception() is None:
                _release(future.result()[1])
            raise

    async def solve_group(self, batch: Sequence[RequestContext]) -> list[Decision | RouterError]:
        """Places a group jointly, as RouteBatch asks; nothing is admitted. The requests are
        evaluated in slices between loop turns, so a large group does not stall other calls; the
        predictors (which read only immutable snapshots) run in a worker thread for one."""
        started, views = time.perf_counter(), self._views()
        if self._pipeline.predictors is not None:
            if len(batch) * len(views) > PREDICT_INLINE_ROWS:
                batch = await asyncio.to_thread(self._pipeline.predict, batch, views)
            else:
                batch = self._pipeline.predict(batch, views)
        candidates = [tuple(self._pipeline.evaluate(c, views)) async for c in sliced(batch)]
        p = placement.plan(self._pipeline, batch, views, tuple(candidates), started)
        solution = await self._solve(p)
        return placement.decide(self._pipeline, p, solution, next(self._ids))

    def close(self) -> None:
        self._executor.shutdown(wait=False)  # queued solves still finish for their callers

    async def _solve(self, p: placement.Plan) -> solver.Solution:
        if (solution := solver.independent(p.problem)) is not None:
            return solution  # nothing couples the requests: no thread, no OR-Tools
        return await self._threaded(p)

    async def _threaded(self, p: placement.Plan) -> solver.Solution:
        """The full solve, in the worker thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, lambda: solver.solve(p.problem, time_limit_s=self._time_limit_s)
        )

    def _next_batch(self) -> list[_Entry]:
        """The next at most max_batch pending entries whose callers still wait."""
        entries = [e for e in self._pending[: self._max_batch] if not e.future.done()]
        del self._pending[: self._max_batch]
        return entries

    def _drain_now(self) -> None:
        """Places the pending batches on this loop turn while none needs the solver thread;
        the first that does goes on in a task (`_drain`), which then drains the rest."""
        handed_on = False
        try:
            while self._pending:
                entries = self._next_batch()
                if not entries or (p := self._plan(entries)) is None:
                    continue
                try:
                    solution = solver.independent(p.problem)
                except Exception as exc:  # a solver bug fails this batch, not the router
                    self._fail(entries, exc)
                    continue
                if solution is None:  # coupled: the solve runs in the worker thread
                    self._drainer = asyncio.ensure_future(self._drain((entries, p)))
                    handed_on = True  # held above (tasks are weakly kept); it drains the rest
                    return
                self._finish(entries, p, solution)
        finally:
            if not handed_on:
                self._draining = False

    async def _drain(self, first: tuple[list[_Entry], placement.Plan] | None = None) -> None:
        """Places the pending batches, each after `batch_window_ms`: with a window, and after a
        batch that needs the solver thread (`first`: its entries and plan)."""
        try:
            if first is not None:
                await self._solve_and_finish(*first, threaded=True)
            while self._pending:
                if self._window_s:
                    await asyncio.sleep(self._window_s)
                entries = self._next_batch()
                if entries and (p := self._plan(entries)) is not None:
                    await self._solve_and_finish(entries, p)
        finally:
            self._draining = False

    def _plan(self, entries: list[_Entry]) -> placement.Plan | None:
        """The batch's plan, or None when planning failed (then every entry has the error)."""
        try:
            return placement.plan(self._pipeline, [e.ctx for e in entries], self._views())
        except Exception as exc:  # a policy bug fails this batch, not the router
            self._fail(entries, exc)
            return None

    @staticmethod
    def _fail(entries: list[_Entry], exc: BaseException) -> None:
        for e in entries:
            if not e.future.done():
                e.future.set_exception(exc)

    async def _solve_and_finish(
        self, entries: list[_Entry], p: placement.Plan, threaded: bool = False
    ) -> None:
        """Solves a planned batch (in the thread at once if `threaded`) and hands out results."""
        try:
            solution = await (self._threaded(p) if threaded else self._solve(p))
        except Exception as exc:  # a solver bug fails this batch, not the router
            self._fail(entries, exc)
            return
        self._finish(entries, p, solution)

    def _finish(self, entries: list[_Entry], p: placement.Plan, solution: solver.Solution) -> None:
        """Turns the solution into decisions, admits and hands each entry its result."""
        try:
            results = placement.decide(self._pipeline, p, solution, next(self._ids))
        except Exception as exc:  # a bug fails this batch, not the router
            self._fail(entries, exc)
            return
        try:
            for e, result in zip(entries, results, strict=True):
                self._hand_over(e, result)
        finally:  # whatever went wrong above, no caller waits forever
            for e in entries:
                if not e.future.done():
                    e.future.set_exception(RequestFailed("INTERNAL", "internal error at placement"))

    def _hand_over(self, e: _Entry, result: Decision | RouterError) -> None:
        """Admits one placed entry and hands it its result, or gives the admission back."""
        if e.future.done():  # the caller went away while we solved
            return
        if isinstance(result, RouterError):
            e.future.set_exception(result)
            return
        try:
            admission = self._admit(e.ctx, result) if e.admit else None
        except RouterError as exc:
            e.future.set_exception(exc)
            return
        except Exception:  # a plugin bug fails this request only, without its details
            log.exception("admission failed", request_id=e.ctx.request.request_id)
            e.future.set_exception(RequestFailed("INTERNAL", "internal error at admission"))
            return
        if e.future.done():  # the admit function itself cancelled the caller
            _release(admission)
            return
        e.future.set_result((result, admission))
