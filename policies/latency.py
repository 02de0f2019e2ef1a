"""latency: estimated time to first token, scored against the request's SLO.

    queue_wait = max(0, in_flight - capacity + 1) / capacity x request_time
    ttft       = queue_wait + prompt_tokens / prefill_rate + rtt
    total      = ttft + output_tokens / decode_rate   (reported on each candidate, not scored)

Rates start from each backend's `performance` config and follow observed requests (EWMA).
request_time is the observed average, else the estimate from the rates. With capacity unknown
(0) the queue is taken as empty.
Score: with `latency_slo_ms`: headroom = (slo - ttft) / slo, clamped to [0, 1];
       without:              reference_ms / (reference_ms + ttft).
Filter (soft): with an SLO, backends whose ttft exceeds it are dropped when another can meet it.
Parameters:
    reference_ms (500): the TTFT that scores 0.5 when the request has no SLO.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from policies.params import Params, parse
from router.core.estimates import estimate_ttft_ms
from router.core.framework import BackendView, RequestContext


class LatencyParams(Params):
    reference_ms: float = Field(500.0, gt=0)


class Latency:
    soft = True

    def __init__(self, name: str, params: LatencyParams) -> None:
        self.name = name
        self.params = params

    def filter(self, ctx: RequestContext, backend: BackendView) -> str | None:
        slo = ctx.request.latency_slo_ms
        if slo and (ttft := estimate_ttft_ms(ctx, backend)) > slo:
            return f"estimated TTFT {ttft:.0f} ms misses the {slo} ms SLO"
        return None

    def score(self, ctx: RequestContext, backend: BackendView) -> float:
        ttft = estimate_ttft_ms(ctx, backend)
        slo = ctx.request.latency_slo_ms
        if slo:
            return min(1.0, max(0.0, (slo - ttft) / slo))
        return self.params.reference_ms / (self.params.reference_ms + ttft)


def create(name: str, parameters: Mapping[str, Any]) -> Latency:
    return Latency(name, parse(LatencyParams, parameters))
