"""Cost and latency estimates shared by the scheduler and the policies (formulas in policies/)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from router.config import PriceConfig
from router.types import ChatMessage

if TYPE_CHECKING:
    from router.framework import BackendView, RequestContext


def cost_usd(price: PriceConfig, prompt_tokens: int, completion_tokens: int) -> float:
    """prompt x input price + completion x output price + the per-request fee."""
    return (
        prompt_tokens * price.input_per_mtok / 1e6
        + completion_tokens * price.output_per_mtok / 1e6
        + price.per_request
    )


def estimate_ttft_ms(ctx: RequestContext, backend: BackendView) -> float:
    """Queue wait + prefill time + network round trip, in milliseconds."""
    prefill_ms = ctx.prompt_tokens / backend.prefill_tokens_per_s * 1e3
    return queue_wait_ms(backend) + prefill_ms + backend.config.performance.rtt_ms


def estimate_total_ms(
    ctx: RequestContext, backend: BackendView, ttft_ms: float | None = None
) -> float:
    """TTFT (computed unless given) + expected output tokens / decode rate, in milliseconds."""
    if ttft_ms is None:
        ttft_ms = estimate_ttft_ms(ctx, backend)
    return ttft_ms + ctx.output_tokens / backend.decode_tokens_per_s * 1e3


# Before any request is observed, a request's service time is taken as one of this size.
_TYPICAL_PROMPT, _TYPICAL_OUTPUT = 512, 256


def queue_wait_ms(backend: BackendView) -> float:
    if backend.capacity <= 0:
        return 0.0
    ahead = backend.in_flight - backend.capacity + 1
    if ahead <= 0:
        return 0.0
    request_ms = (
        backend.observed_request_ms
        or (
            _TYPICAL_PROMPT / backend.prefill_tokens_per_s
            + _TYPICAL_OUTPUT / backend.decode_tokens_per_s
        )
        * 1e3
    )
    return ahead / backend.capacity * request_ms


def prompt_tokens_estimate(messages: Sequence[ChatMessage]) -> int:
    """About 4 characters a token, plus a few tokens of template per message."""
    return sum(len(m.content) for m in messages) // 4 + 4 * len(messages)
