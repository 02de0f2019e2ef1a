"""The request log: one JSON line per finished request, for what-if replays. Never content.

Each line: {"ts": unix seconds at arrival, "request_id", "tenant", "privacy": class name (the
effective one), "prompt_tokens", "max_tokens", "completion_tokens", "latency_slo_ms",
"backend", "cost_usd", "ttft_ms", "total_ms", "status"}. Lines are written by a background
thread, so the event loop never waits on the disk.
"""

from __future__ import annotations

import json
import queue
import threading
from pathlib import Path
from typing import Any

from router.core.framework import RequestContext
from router.core.types import Request, Usage

_STOP = object()


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
    ) -> None:
        """Queues the line for one finished (or failed) Generate."""
        self.write(
            {
                "ts": round(arrived_unix, 6),
                "request_id": request.request_id,
                "tenant": request.tenant,
                "privacy": (ctx.privacy if ctx else request.privacy).name,
                "prompt_tokens": usage.prompt_tokens or (ctx.prompt_tokens if ctx else 0),
                "max_tokens": request.max_tokens,
                "completion_tokens": usage.completion_tokens,
                "latency_slo_ms": request.latency_slo_ms,
                "backend": usage.backend,
                "cost_usd": usage.cost_usd,
                "ttft_ms": round(usage.ttft_ms, 3),
                "total_ms": round(usage.total_ms, 3),
                "status": status,
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
