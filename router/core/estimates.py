"""Cost, latency and prompt-size estimates shared by the scheduler and the policies.

Two prompt sizes for a backend that cannot count tokens itself (docs/policies.md):

    typical(r) = ASCII chars // 4 + other chars + 4 per message          (scores, latency)
    bound(r)   = UTF-8 bytes of roles and contents + 8 per message + 8   (hard caps)

"Contents" are every text the backend receives (Request.texts()): message contents and text
parts, image URLs, tool calls and tool definitions (each tool counting as a message) and the
response schema; each image adds IMAGE_TOKENS (1600, the most Anthropic charges for one; OpenAI's
high-detail images stay below it) to both.

The bound holds for every byte-level BPE or SentencePiece-with-byte-fallback tokenizer, since each
of their tokens covers at least one byte of text, as long as the server's chat template adds at
most 8 tokens a message and 8 more (role markers and the reply header). Both cost linear time.
"""

from __future__ import annotations

from router.core.backend_config import PriceConfig
from router.core.framework import BackendView, Prediction, RequestContext
from router.core.types import IMAGE_TOKENS, Request

_NONE = Prediction(fallback="no prediction for this backend")


def cost_usd(price: PriceConfig, prompt_tokens: int, completion_tokens: int) -> float:
    """prompt x input price + completion x output price + the per-request fee."""
    return (
        prompt_tokens * price.input_per_mtok / 1e6
        + completion_tokens * price.output_per_mtok / 1e6
        + price.per_request
    )


def estimate_ttft_ms(ctx: RequestContext, backend: BackendView) -> float:
    """The predictors' TTFT where they decide (router/predict/), else queue wait + prefill time
    + network round trip, in milliseconds."""
    if ctx.predictions and not (p := ctx.predictions.get(backend.name, _NONE)).fallback:
        return p.ttft_ms
    prefill_ms = ctx.prompt_tokens_on(backend.name) / backend.prefill_tokens_per_s * 1e3
    return queue_wait_ms(backend) + prefill_ms + backend.config.performance.rtt_ms


def estimate_total_ms(
    ctx: RequestContext, backend: BackendView, ttft_ms: float | None = None
) -> float:
    """TTFT (computed unless given) + expected output tokens x time per token, in milliseconds:
    the predictors' figures where they decide, else the request's output at the decode rate."""
    if ttft_ms is None:
        ttft_ms = estimate_ttft_ms(ctx, backend)
    if ctx.predictions and not (p := ctx.predictions.get(backend.name, _NONE)).fallback:
        return ttft_ms + max(0, p.output_tokens - 1) * p.tpot_ms
    return ttft_ms + ctx.output_tokens / backend.decode_tokens_per_s * 1e3


def expected_output_tokens(ctx: RequestContext, backend: BackendView) -> int | None:
    """The output length the predictors expect on `backend`, or None where they do not decide."""
    if ctx.predictions and not (p := ctx.predictions.get(backend.name, _NONE)).fallback:
        return p.output_tokens
    return None


def estimator(ctx: RequestContext, backend: BackendView) -> str:
    """What decided the estimates on `backend`: "model", or "analytic" (with why, when the
    predictors are configured but did not decide)."""
    if not ctx.predictions:
        return "analytic"
    p = ctx.predictions.get(backend.name, _NONE)
    return f"analytic: {p.fallback}" if p.fallback else "model"


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


TYPICAL_TOKENS_PER_MESSAGE = 4
BOUND_TOKENS_PER_MESSAGE = 8
BOUND_TOKENS_FIXED = 8


def prompt_tokens_estimate(request: Request) -> int:
    """A typical count: ASCII text 4 characters a token, any other character a token of its own
    (CJK, emoji), plus a few tokens of template per message and IMAGE_TOKENS per image. Counts
    every text the backend receives (Request.texts(): tools, tool calls, schemas too)."""
    ascii_chars = other_chars = 0
    for text in request.texts():
        n = len(text.encode("ascii", "ignore"))  # C speed, linear
        ascii_chars += n
        other_chars += len(text) - n
    return (
        ascii_chars // 4
        + other_chars
        + TYPICAL_TOKENS_PER_MESSAGE * (len(request.messages) + len(request.tools))
        + IMAGE_TOKENS * request.images
    )


def completion_tokens_estimate(text: str) -> int:
    """Tokens in a piece of generated text whose count the backend does not say: at least one,
    else the typical rate (ASCII 4 characters a token, any other character one)."""
    n = len(text.encode("ascii", "ignore"))
    return max(1, n // 4 + len(text) - n)


def prompt_tokens_bound(request: Request) -> int:
    """An upper bound on the prompt's tokens for any byte-level tokenizer (module docstring)."""
    messages = request.messages
    text_bytes = sum(len(m.role.encode()) for m in messages)
    text_bytes += sum(len(t.encode()) for t in request.texts())
    parts = len(messages) + len(request.tools)
    return (
        text_bytes
        + BOUND_TOKENS_PER_MESSAGE * parts
        + BOUND_TOKENS_FIXED
        + IMAGE_TOKENS * request.images
    )
