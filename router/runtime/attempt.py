"""One attempt of a Generate on one backend: its timing and what it used so far.

The generation loop (router/runtime/generation.py) reads the backend's stream itself (one
async-generator hop per delta less) and tells the attempt about each event: `delta`, `finish`.

Timing is per attempt: the backend's statistics get this attempt's own time to first token and
total time, measured from its admission (the wait for placement and any failed earlier attempt
excluded), while the usage keeps the client-visible TTFT and total time from the request's start.

Completion tokens are summed as deltas arrive (`TextDelta.tokens`), so a stream that ends after
its first token (cancel, deadline, backend failure) is charged what it produced: the prompt as
counted at placement for this backend + the completion tokens so far (`end_early`).

A strict json_schema request has its output collected and checked against the schema at the
finish (router/core/json_schema.py, linear time): `usage.schema_valid`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from router.core import estimates, json_schema
from router.core.backend import Finish, StreamEvent, TextDelta
from router.core.errors import BackendUnavailable
from router.core.types import Decision, Request, Usage
from router.runtime.context import Runtime


class Attempt:
    """Streams one admitted placement and keeps `usage` current."""

    def __init__(
        self,
        rt: Runtime,
        decision: Decision,
        request: Request,
        started: float,
        usage: Usage,
        observe: bool = False,
    ) -> None:
        self.backend = rt.backends[decision.backend]
        self._decision = decision
        self._prefill_ms = 0.0
        self._ended_at = 0.0
        # For the request log (`observe`): the backend's counts before this request, as the
        # scheduler's view showed them.
        self._load = (0, 0)
        if observe:
            view = rt.view(decision.backend)
            self._load = (max(0, view.in_flight - 1), view.queued)
        self._stats = rt.stats[decision.backend]
        self._request = request
        self._started = started  # the request's start (perf_counter)
        self.began = time.perf_counter()  # this attempt's start, right after its admission
        self.first_token_at = 0.0
        self.finished = False  # the backend's Finish arrived; usage holds its exact counts
        self.usage = usage
        usage.prompt_tokens = decision.prompt_tokens
        usage.completion_tokens = 0
        usage.schema_valid = None
        fmt = request.response_format
        self._output: list[str] | None = [] if fmt.strict and fmt.schema else None

    @property
    def streaming(self) -> bool:
        """True once the first token went out: a failure can no longer be retried elsewhere."""
        return self.first_token_at > 0

    def stream(self) -> AsyncIterator[StreamEvent]:
        """The backend's stream for this attempt (the caller closes it)."""
        return self.backend.generate(self._request)

    def delta(self, event: TextDelta) -> None:
        """Counts a delta the backend sent (and its time, if it is the first)."""
        if not self.first_token_at:
            self.first_token_at = time.perf_counter()
            self.usage.ttft_ms = (self.first_token_at - self._started) * 1e3
        self.usage.completion_tokens += event.tokens
        if self._output is not None:
            self._output.append(event.text)

    def unfinished(self) -> BackendUnavailable:
        """The error for a backend stream that ended without its Finish."""
        reason = f"stream ended without a finish (after {self.usage.completion_tokens} tokens)"
        return BackendUnavailable(self.backend.name, reason)

    def finish(self, event: Finish) -> None:
        """Takes the backend's exact counts, prices them and records the attempt's timing."""
        now = time.perf_counter()
        usage = self.usage
        usage.prompt_tokens = event.prompt_tokens
        usage.completion_tokens = event.completion_tokens
        usage.finish_reason = event.finish_reason
        usage.cost_usd = estimates.cost_usd(
            self.backend.config.price, event.prompt_tokens, event.completion_tokens
        )
        usage.total_ms = (now - self._started) * 1e3
        self._prefill_ms, self._ended_at = event.prefill_ms, now
        if self._output is not None:
            schema = json_schema.parse_schema(self._request.response_format.schema)
            usage.schema_valid = json_schema.validates(schema, "".join(self._output))
        self.finished = True
        first = self.first_token_at
        self._stats.observe(
            event.prompt_tokens,
            (first - self.began) * 1e3 if first else 0.0,
            event.completion_tokens,
            now - first if first else 0.0,
            (now - self.began) * 1e3,
            event.prefill_ms,
        )

    def end_early(self, reason: str) -> None:
        """Charges a stream that ended after its first token without its Finish."""
        if self.finished:
            return
        usage = self.usage
        usage.finish_reason = reason
        usage.cost_usd = estimates.cost_usd(
            self.backend.config.price, usage.prompt_tokens, usage.completion_tokens
        )
        self._ended_at = time.perf_counter()
        usage.total_ms = (self._ended_at - self._started) * 1e3

    def observation(self, status: str) -> dict[str, Any]:
        """This attempt for the request log: the features and timings a predictor learns from
        (router/predict/features.py), and the analytic estimates made at the decision."""
        usage, began, first = self.usage, self.began, self.first_token_at
        ended = self._ended_at or time.perf_counter()
        ttft = (first - began) * 1e3 if first else 0.0
        name = self.backend.name
        chosen = next((c for c in self._decision.candidates if c.backend == name), None)
        record: dict[str, Any] = {
            "backend": name,
            "status": status,
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "finish_reason": usage.finish_reason,
            "ttft_ms": round(ttft, 3),
            "decode_ms": round((ended - first) * 1e3, 3) if first else 0.0,
            "total_ms": round((ended - began) * 1e3, 3),
            "prefill_ms": round(self._prefill_ms, 3),
            "queue_ms": round(max(0.0, ttft - self._prefill_ms), 3) if self._prefill_ms else None,
            "in_flight": self._load[0],
            "queued": self._load[1],
        }
        if chosen is not None:
            record["est_ttft_ms"] = round(chosen.estimated_ttft_ms, 3)
            record["est_total_ms"] = round(chosen.estimated_total_ms, 3)
            record["estimator"] = chosen.estimator
        if signals := getattr(self.backend, "metrics", None):  # vLLM / llama.cpp server load
            record["load"] = dict(signals)
        return record
