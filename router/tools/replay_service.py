"""Calibrated replay: trained predictors as the simulator's service-time model, and how far a
replay's times were from the real run its trace recorded.

With `tokenrouter replay --service-model DIR`, a job that starts on a backend takes the TTFT
and time per output token the predictors give for it there (its prompt, max_tokens, messages
and tools, and the backend's running and queued jobs at that moment); where they do not judge
(an unknown backend, an input outside their training range) the configured rates are used, and
counted. A request log trace records each request's TTFT and total time, so the report can say
how far the simulated ones were from them (mean absolute percentage error, served requests
only), whichever service model ran.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from router.core.backend_config import BackendCommon
from router.core.framework import BackendView, RequestContext
from router.predict.model import Predictors
from router.tools.replay_trace import TraceRequest


class ServiceModel:
    """Service times from trained predictors; `fallbacks` counts the jobs they did not judge."""

    def __init__(self, predictors: Predictors) -> None:
        self.predictors = predictors
        self.fallbacks = 0

    def times(
        self,
        ctx: RequestContext,
        name: str,
        config: BackendCommon,
        running: int,
        queued: int,
        output: int,
    ) -> tuple[float, float] | None:
        """(TTFT, decode time) in seconds for a job starting now, or None: use the rates."""
        view = BackendView(name, config, in_flight=running, queued=queued)
        (found,) = self.predictors.predict([ctx], [view])
        p = found[name]
        if p.fallback:
            self.fallbacks += 1
            return None
        return p.ttft_ms / 1e3, max(0, output - 1) * p.tpot_ms / 1e3


def calibration(
    requests: Sequence[TraceRequest], ttft: Mapping[int, float], total: Mapping[int, float]
) -> tuple[float | None, float | None, int]:
    """MAPE (%) of the simulated TTFT and total time against the ones the trace recorded, over
    the requests served in both; and how many those were. None: the trace recorded no times."""
    pairs = [
        (ttft[k], r.ttft_ms, total[k], r.total_ms)
        for k, r in enumerate(requests)
        if k in ttft and r.ttft_ms and r.total_ms
    ]
    if not pairs:
        return None, None, 0
    ttft_err = sum(abs(s - real) / real for s, real, _, _ in pairs) / len(pairs) * 100
    total_err = sum(abs(s - real) / real for _, _, s, real in pairs) / len(pairs) * 100
    return ttft_err, total_err, len(pairs)
