"""The features a predictor sees and the targets it predicts, shared by training and serving.

A row is one (request, backend) pair: the backend as a one-hot column per backend seen in
training, then FEATURES. Serving builds rows from a RequestContext and a BackendView; training
builds the same rows from the request log's attempts (router/runtime/request_log.py), whose
`in_flight` and `queued` are the backend's counts at admission, before the request itself, as
the view shows them to the scheduler.

Targets: `ttft_ms` (admission to first token), `tpot_ms` (decode time per output token after the
first) and `output_tokens` (completion tokens of a request that finished). Models learn
log1p(target), so that their error is relative, as the MAPE they are judged by.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

FEATURES = ("prompt_tokens", "max_tokens", "in_flight", "queued", "messages", "tools")
TARGETS = ("ttft_ms", "tpot_ms", "output_tokens")


def serving_row(
    prompt_tokens: int, max_tokens: int, in_flight: int, queued: int, messages: int, tools: int
) -> tuple[float, ...]:
    """FEATURES of one candidate, in order."""
    return (
        float(prompt_tokens),
        float(max_tokens),
        float(in_flight),
        float(queued),
        float(messages),
        float(tools),
    )


def observation(record: Mapping[str, Any], attempt: Mapping[str, Any]) -> dict[str, Any] | None:
    """One training row from a request-log record and one of its attempts: the backend, ts,
    FEATURES, the targets it measured (None where it did not) and the analytic estimates made
    at the decision; None for an attempt that produced no token."""
    completion = _int(attempt.get("completion_tokens"))
    ttft = _float(attempt.get("ttft_ms"))
    if completion <= 0 or ttft <= 0:
        return None
    decode = _float(attempt.get("decode_ms"))
    finished = attempt.get("status") == "OK"
    return {
        "backend": str(attempt.get("backend", "")),
        "ts": _float(record.get("ts")),
        "features": serving_row(
            _int(attempt.get("prompt_tokens")),
            _int(record.get("max_tokens")),
            _int(attempt.get("in_flight")),
            _int(attempt.get("queued")),
            _int(record.get("messages")),
            _int(record.get("tools")),
        ),
        "ttft_ms": ttft,
        "tpot_ms": decode / (completion - 1)
        if finished and completion > 1 and decode > 0
        else None,
        "output_tokens": float(completion) if finished else None,
        "total_ms": ttft + decode if finished else None,
        "est_ttft_ms": _float(attempt.get("est_ttft_ms")),
        "est_total_ms": _float(attempt.get("est_total_ms")),
    }


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return float(value)
