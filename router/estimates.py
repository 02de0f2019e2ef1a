"""Cost and latency estimates shared by the scheduler and the policies."""

from __future__ import annotations

from router.config import PriceConfig


def cost_usd(price: PriceConfig, prompt_tokens: int, completion_tokens: int) -> float:
    """prompt x input price + completion x output price + the per-request fee."""
    return (
        prompt_tokens * price.input_per_mtok / 1e6
        + completion_tokens * price.output_per_mtok / 1e6
        + price.per_request
    )
