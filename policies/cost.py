"""cost: what a request will cost on each backend, as a score and as a hard cap.

    cost  = prompt_tokens x input_price + expected_output x output_price + per_request fee
    score = reference_usd / (reference_usd + cost)         (free = 1, cost = reference -> 0.5)
    worst = prompt_bound x input_price + max_tokens x output_price + per_request fee

Filter: a request with `max_cost_usd` excludes backends whose worst-case cost exceeds it, so the
real cost never does: `prompt_bound` is the backend's exact count where it has a tokenizer, else
an upper bound (UTF-8 bytes + template allowance, router/core/estimates.py). The score uses the
typical count (exact, else the estimate). Edge backends cost their per-token price (default 0).
Parameters:
    reference_usd (0.001): the cost that scores 0.5.
    expected_output_ratio (1.0): expected output as a fraction of max_tokens, for the score
        (the cap always uses the worst case). Where learned predictors are configured and
        decide (docs/predictors.md), their expected output length is used instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from policies.params import Params, parse
from router.core import estimates
from router.core.estimates import cost_usd
from router.core.framework import BackendView, RequestContext


class CostParams(Params):
    reference_usd: float = Field(0.001, gt=0)
    expected_output_ratio: float = Field(1.0, gt=0, le=1)


class Cost:
    def __init__(self, name: str, params: CostParams) -> None:
        self.name = name
        self.params = params

    def filter(self, ctx: RequestContext, backend: BackendView) -> str | None:
        cap = ctx.request.max_cost_usd
        if cap is None:
            return None
        worst = cost_usd(
            backend.config.price, ctx.prompt_bound_on(backend.name), ctx.request.max_tokens
        )
        if worst > cap:
            return f"worst-case cost ${worst:.6f} exceeds max_cost_usd ${cap:.6f}"
        return None

    def score(self, ctx: RequestContext, backend: BackendView) -> float:
        expected = estimates.expected_output_tokens(ctx, backend)
        if expected is None:
            expected = round(ctx.output_tokens * self.params.expected_output_ratio)
        cost = cost_usd(backend.config.price, ctx.prompt_tokens_on(backend.name), expected)
        ref = self.params.reference_usd
        return ref / (ref + cost)


def create(name: str, parameters: Mapping[str, Any]) -> Cost:
    return Cost(name, parse(CostParams, parameters))
