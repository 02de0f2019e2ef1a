"""The request log: one JSON line per finished request, for what-if replays and for training
the predictors (docs/predictors.md). Never content.

Each line: {"ts": unix seconds at arrival, "request_id", "tenant", "tenant_hash" (SHA-256,
16 hex), "privacy": class name (the effective one), "profile", "model" (as asked),
"prompt_tokens", "max_tokens", "completion_tokens", "messages", "tools" (counts),
"latency_slo_ms", "backend", "cost_usd", "ttft_ms", "total_ms", "status", "attempts": [...]}:
one entry per backend tried, with its
"backend", "status", "prompt_tokens", "completion_tokens", "finish_reason", "ttft_ms" (from its
admission), "decode_ms" (first token to finish), "total_ms", "prefill_ms" (as the backend
reports it, else 0), "queue_ms" (TTFT less prefill, when that is known), "in_flight" and
"queued" (the backend's counts before it), "est_ttft_ms", "est_total_ms" and "estimator" (the
decision's estimates and what made them) and, where the backend reports load signals, "load"
(vLLM: running, waiting, kv_cache_usage; llama.cpp server: slots). Lines are written by a
background thread, so the event loop never waits on the disk.
"""

from __future__ import annotations

import functools
import hashlib
import json
import queue
import threading
from pathlib import Path
from typing import Any

from router.core.framework import RequestContext
from router.core.types import Request, Usage

_STOP = object()


@functools.lru_cache(maxsize=4096)
def tenant_hash(tenant: str) -> str:
    """A tenant's stable pseudonym in the log: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(tenant.encode()).hexdigest()[:16]


class RequestLog:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="request-log", daemon=True)
        self._thread.start()

    def write(self, record: dict[str, Any]) -> None:
        """Queues one record; returns at once."""
        self._queue.put(record)

    def record(
        self,
        request: Request,
        usage: Usage,
        ctx: RequestContext | None,
        status: str,
        arrived_unix: float,
        attempts: list[dict[str, Any]] = (),  # type: ignore[assignment]
    ) -> None:
        """Queues the line for one finished (or failed) Generate."""
        self.write(
            {
                "ts": round(arrived_unix, 6),
                "request_id": request.request_id,
                "tenant": request.tenant,
                "tenant_hash": tenant_hash(request.tenant),
                "privacy": (ctx.privacy if ctx else request.privacy).name,
                "profile": request.profile,
                "model": request.model,
                "prompt_tokens": usage.prompt_tokens or (ctx.prompt_tokens if ctx else 0),
                "max_tokens": request.max_tokens,
                "completion_tokens": usage.completion_tokens,
                "messages": len(request.messages),
                "tools": len(request.tools),
                "latency_slo_ms": request.latency_slo_ms,
                "backend": usage.backend,
                "cost_usd": usage.cost_usd,
                "ttft_ms": round(usage.ttft_ms, 3),
                "total_ms": round(usage.total_ms, 3),
                "status": status,
                "attempts": list(attempts),
            }
        )

    def close(self) -> None:
        """Writes what is queued, then stops."""
        self._queue.put(_STOP)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            while (record := self._queue.get()) is not _STOP:
                f.write(json.dumps(record, separators=(",", ":")) + "\n")
                if self._queue.empty():
                    f.flush()
