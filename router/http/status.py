"""HTTP statuses for the router's errors, the same on every face.

INVALID_ARGUMENT 400 (an unknown `model` 404), UNAUTHENTICATED 401, PERMISSION_DENIED 403,
RESOURCE_EXHAUSTED 429 with Retry-After, FAILED_PRECONDITION (no feasible backend) 400,
UNAVAILABLE 503, DEADLINE_EXCEEDED 504, CANCELLED 499, anything else 500. Only RouterError
messages reach a client; any other exception is logged under an error id and answered
"internal error (id ...)".
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass

import structlog

from router.core.errors import Code, InvalidArgument, RouterError

log = structlog.get_logger("tokenrouter")

STATUS = {
    Code.INVALID_ARGUMENT: 400,
    Code.FAILED_PRECONDITION: 400,
    Code.UNAUTHENTICATED: 401,
    Code.PERMISSION_DENIED: 403,
    Code.RESOURCE_EXHAUSTED: 429,
    Code.CANCELLED: 499,
    Code.INTERNAL: 500,
    Code.UNAVAILABLE: 503,
    Code.DEADLINE_EXCEEDED: 504,
}
RETRY_AFTER_S = 1  # for a capacity or budget refusal that names no time of its own
MAX_RETRY_AFTER_S = 3600


@dataclass(frozen=True)
class HttpError:
    """What a face answers for a failure: status, message, the field (if any), extra headers."""

    status: int
    message: str
    param: str | None = None
    headers: tuple[tuple[bytes, bytes], ...] = ()


def http_error(exc: BaseException) -> HttpError:
    """The answer for `exc` (see the module docstring)."""
    if not isinstance(exc, RouterError):
        error_id = uuid.uuid4().hex[:12]
        log.error("internal error", error_id=error_id, exc_info=exc)
        return HttpError(500, f"internal error (id {error_id})")
    status = getattr(exc, "http_status", None) or STATUS.get(Code(exc.code), 500)
    param = None
    if isinstance(exc, InvalidArgument):
        param = exc.field
        if exc.field == "model" and exc.reason.startswith("unknown model"):
            status = 404
    headers: tuple[tuple[bytes, bytes], ...] = ()
    if status in (429, 503):
        retry = getattr(exc, "retry_after_s", None)
        if retry is not None or status == 429:
            if retry is None or not math.isfinite(retry):
                retry = RETRY_AFTER_S
            seconds = min(MAX_RETRY_AFTER_S, max(1, math.ceil(retry)))
            headers = ((b"retry-after", str(seconds).encode()),)
    return HttpError(status, str(exc), param, headers)
