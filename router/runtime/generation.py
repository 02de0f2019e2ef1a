"""Generation with fallback: place, admit, stream; re-place before the first token fails.

If the chosen backend fails before its first token (refused, 5xx, 429, timeout, full), the
request is placed again without it (`ctx.excluded`; privacy and budgets still binding) and a new
decision is yielded, up to `fallback.max_attempts` backends within the deadline. After the first
token a failure ends the stream with UNAVAILABLE: never a silent truncation.

Every admission (router/runtime/admission.py) is settled or released exactly once: a finished stream
settles its usage; one that ends after its first token (failure, cancel, deadline) settles the
prompt and the tokens produced so far (router/runtime/attempt.py); one that ends before releases
everything. Each request ends with one call of the `ended` callback
(router/runtime/request_logging.py).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import structlog

from router.core.backend import TextDelta
from router.core.errors import BackendUnavailable, RequestFailed, ResourceExhausted, RouterError
from router.core.types import Decision, Request, Usage
from router.observability import Metrics, tracing
from router.runtime.admission import Admission
from router.runtime.attempt import Attempt
from router.runtime.context import Runtime
from router.runtime.request_logging import status_of

log = structlog.get_logger("tokenrouter")

Ended = Callable[..., None]  # (kind, request, started, *, usage, error, ctx): logs the request


async def generate(
    rt: Runtime, request: Request, ended: Ended, metrics: Metrics, observe: bool = False
) -> AsyncIterator[Decision | TextDelta | Usage]:
    """Yields a decision, text deltas and the usage on version `rt`; see the module docstring.
    `metrics` counts each decision and fallback (the end of the request: `ended`). With
    `observe`, `ended` also gets `attempts`: each attempt's observation for the request log.

    While it runs, `rt` counts as in use (a reload's drain waits for it). The backend's stream
    is read here directly: one generator between the backend and the service, not a stack."""
    with rt.in_use():
        started = time.perf_counter()
        usage = Usage()
        ctx = None
        attempts: list[dict[str, Any]] | None = [] if observe else None
        trace = tracing.current()  # None when tracing is off; read once, here
        try:
            ctx = await rt.context(request)
            last: RouterError = RouterError("no attempt")  # the latest backend failure
            for attempt in range(1, rt.config.fallback.max_attempts + 1):
                try:
                    placing = rt.batcher.place(ctx, admit=True)
                    if trace is not None:
                        placing = trace.placement(placing, request, attempt)
                    decision, admission = await placing
                except RouterError as exc:
                    if attempt == 1:
                        raise
                    tried = ", ".join(usage.backends_tried)
                    reason = f"{last} (tried {tried}; no other backend: {exc})"
                    raise RequestFailed(last.code, reason, _retry_after(last)) from None
                metrics.decided(decision)
                usage.backend = decision.backend
                usage.backends_tried.append(decision.backend)
                run = Attempt(rt, decision, request, started, usage, observe)
                span = trace.attempt(decision, attempt) if trace is not None else None
                try:  # from here on, every way out settles or releases the admission
                    if admission.needs_confirm:
                        await admission.confirm()
                    yield decision
                    async with contextlib.aclosing(run.stream()) as stream:
                        async for event in stream:
                            if isinstance(event, TextDelta):
                                run.delta(event)
                                yield event
                            else:
                                run.finish(event)
                                break
                        else:
                            raise run.unfinished()
                    yield usage
                except (BackendUnavailable, ResourceExhausted) as exc:
                    _end(run, admission, "error")
                    if attempts is not None:
                        attempts.append(run.observation(exc.code))
                    tracing.end_attempt(span, run, exc)
                    last = _backend_failed(rt, decision.backend, exc, run.streaming)
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
                    metrics.fallback(decision.backend, exc.code)
                    ctx = replace(ctx, excluded={**ctx.excluded, decision.backend: str(exc)})
                    continue
                except BaseException as exc:
                    _end(run, admission, "cancelled")
                    if attempts is not None:
                        attempts.append(run.observation(status_of(exc)))
                    tracing.end_attempt(span, run, exc)
                    raise
                admission.settle(usage)
                if attempts is not None:
                    attempts.append(run.observation("OK"))
                tracing.end_attempt(span, run)
                rt.health.success(decision.backend)
                break
            else:
                tried = ", ".join(usage.backends_tried)
                raise RequestFailed(last.code, f"{last} (tried {tried})", _retry_after(last))
        except BaseException as exc:
            if not usage.total_ms:
                usage.total_ms = (time.perf_counter() - started) * 1e3
            ended("generate", request, started, usage=usage, error=exc, ctx=ctx, attempts=attempts)
            raise
        ended("generate", request, started, usage=usage, ctx=ctx, attempts=attempts)


def _retry_after(exc: RouterError) -> float | None:
    return getattr(exc, "retry_after_s", None)


def _end(run: Attempt, admission: Admission, reason: str) -> None:
    """Ends an attempt that did not finish normally: charges what it produced once its first
    token went out (or all of it, if its usage was complete), else gives everything back."""
    if run.streaming or run.finished:
        run.end_early(reason)
        admission.settle(run.usage)
    else:
        admission.release()


def _backend_failed(rt: Runtime, backend: str, exc: RouterError, streamed: bool) -> RouterError:
    """Records the failure; re-raises it when tokens were already streamed."""
    if isinstance(exc, BackendUnavailable):
        rt.health.failure(backend, exc.reason, exc.retry_after_s)
    if streamed:
        raise RequestFailed(
            "UNAVAILABLE", f"{exc} after the stream had started; the output is incomplete"
        ) from exc
    return exc
