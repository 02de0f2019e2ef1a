"""Observed per-backend statistics (moving averages), updated as requests finish."""

from __future__ import annotations

from dataclasses import dataclass

EWMA_ALPHA = 0.2


def ewma(previous: float, sample: float, alpha: float = EWMA_ALPHA) -> float:
    """Exponentially weighted moving average; the first sample is taken as is."""
    return sample if previous == 0.0 else previous + alpha * (sample - previous)


@dataclass(slots=True)
class BackendStats:
    ttft_ms: float = 0.0
    tokens_per_s: float = 0.0
    prefill_tokens_per_s: float = 0.0
    request_ms: float = 0.0
    requests: int = 0

    def observe(
        self,
        prompt_tokens: int,
        ttft_ms: float,
        completion_tokens: int,
        decode_s: float,
        total_ms: float,
        prefill_ms: float = 0.0,
    ) -> None:
        """Records one finished request: time to first token, prefill and decode speed.

        The prefill rate comes only from the backend's own prefill time (queue wait and network
        excluded), since the latency estimate adds those separately.
        """
        self.requests += 1
        self.request_ms = ewma(self.request_ms, total_ms)
        if completion_tokens > 0 and ttft_ms > 0:
            self.ttft_ms = ewma(self.ttft_ms, ttft_ms)
        if completion_tokens > 0 and prefill_ms > 0:
            rate = prompt_tokens / prefill_ms * 1e3
            self.prefill_tokens_per_s = ewma(self.prefill_tokens_per_s, rate)
        if completion_tokens > 1 and decode_s > 0:
            self.tokens_per_s = ewma(self.tokens_per_s, (completion_tokens - 1) / decode_s)
