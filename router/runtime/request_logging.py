"""How a request's end is recorded: one structured log line, and a request-log record.

The line (structlog, logger "tokenrouter") carries the request id, tenant, backend, latency and,
for a Generate, the usage; its fields are built only when its level is enabled (INFO for OK and
CANCELLED, WARNING otherwise). Message content is logged only with `server.log_content`. A
Generate also gets one record in the request log (router/runtime/request_log.py), when one is
configured.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import structlog

from router.core.framework import RequestContext
from router.core.types import Request, Usage
from router.runtime.request_log import RequestLog

log = structlog.get_logger("tokenrouter")


def status_of(error: BaseException | None) -> str:
    """The status a request ended with: OK, CANCELLED or the error's code (INTERNAL if none)."""
    if error is None:
        return "OK"
    if isinstance(error, asyncio.CancelledError | GeneratorExit):
        return "CANCELLED"
    return getattr(error, "code", "INTERNAL")


def request_ended(
    kind: str,
    request: Request,
    started: float,
    *,
    request_log: RequestLog | None,
    log_content: bool,
    usage: Usage | None = None,
    backend: str = "",
    error: BaseException | None = None,
    ctx: RequestContext | None = None,
    attempts: list[dict[str, Any]] | None = None,
) -> None:
    """Logs the end of a `kind` ("route", "generate") request that began at `started`
    (perf_counter), and writes its request-log record (with its `attempts`) if it is a
    Generate."""
    status = status_of(error)
    elapsed_s = time.perf_counter() - started
    if kind == "generate" and request_log is not None and usage is not None:
        request_log.record(request, usage, ctx, status, time.time() - elapsed_s, attempts or [])
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
    if log_content:
        fields["messages"] = [{"role": m.role, "content": m.content} for m in request.messages]
        if request.tools or len(request.texts()) > len(request.messages):
            fields["texts"] = request.texts()  # tool calls, parts, tools, schema
    if status == "OK":
        log.info(kind, **fields)
    elif isinstance(error, asyncio.CancelledError | GeneratorExit):
        log.info(kind, status=status, **fields)
    else:
        log.warning(kind, status=status, error=str(error), **fields)
