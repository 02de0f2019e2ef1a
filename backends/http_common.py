"""What the HTTP backends share: API keys, token timeouts, concurrency limits, error mapping.

(The HTTP client is backends/wire.py, requests and event streams on it backends/http_stream.py,
the SSE parser backends/sse.py.)

Error mapping (every failure names the backend; API keys never appear in a message):

* connection refused / reset / closed, HTTP 5xx, 401, 403, 404, 408, 409, 429, stalls, timeouts,
  malformed SSE or JSON, and streams that end before completion -> `BackendUnavailable`, which the
  router may retry elsewhere. 429 and 503 carry `retry_after_s` from `Retry-After` (seconds or an
  HTTP-date, at most a day; NaN, negative or garbage is ignored) when the upstream sent one.
* what an upstream sends is bounded: an error body is read up to 16 KiB, an SSE line or the data
  of one SSE event up to 1 MiB (see backends/sse.py; beyond: `BackendUnavailable`
  "malformed stream: ..."), JSON nested too deeply is malformed, and a
  token count that is not a whole number in [0, `MAX_REPORTED_TOKENS`] is ignored (the backend
  counts for itself). A probe reads at most 8 MiB of an answer (`MAX_PROBE_BYTES`).
* 400, 413 and 422 mean the request itself is bad (too long, invalid field): another backend would
  most likely refuse it too, so they become `InvalidArgument("messages", ...)` for the client.
* more requests at once than `max_concurrency` -> `ResourceExhausted`, at once, without I/O;
  all `max_connections` connections still busy at the first-token deadline -> `ResourceExhausted`
  naming that limit (backends/http_stream.py); neither counts against the backend's health.
"""

from __future__ import annotations

import contextlib
import datetime
import email.utils
import json
import math
import os
import time
from collections.abc import Iterator, Mapping
from typing import Any

import orjson

from backends import wire
from backends.wire import WireError
from router.core.backend_config import MAX_EJECTION_S, TimeoutsConfig
from router.core.errors import BackendUnavailable, InvalidArgument, ResourceExhausted, RouterError

SNIPPET_CHARS = 200
_BAD_REQUEST = frozenset({400, 413, 422})
MAX_REPORTED_TOKENS = 2 * 1_048_576  # twice the largest context window a config may declare


def api_key(backend: str, env: str | None) -> str | None:
    """The API key from the environment variable `env`, read at request time; None if no `env`."""
    if not env:
        return None
    value = os.environ.get(env, "").strip()
    if not value:
        raise BackendUnavailable(backend, f"API key environment variable {env} is not set")
    return value


def redact(text: str, secret: str | None) -> str:
    """`text` with every occurrence of `secret` replaced, so keys never reach a message."""
    return text.replace(secret, "<redacted>") if secret else text


class ConcurrencyLimit:
    """At most `limit` requests at once (0: unlimited); one more is refused at once."""

    def __init__(self, backend: str, limit: int) -> None:
        self.backend = backend
        self.limit = limit
        self.running = 0

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        if self.limit and self.running >= self.limit:
            raise ResourceExhausted(
                f"backend {self.backend}: {self.running} requests already running "
                f"(max_concurrency {self.limit})"
            )
        self.running += 1
        try:
            yield
        finally:
            self.running -= 1


class TokenClock:
    """Deadlines of one streaming request: first token, gaps between tokens, and the total.

    Time the consumer spends between `tick()`s is not counted as a stall: call `tick()` when the
    consumer asks for the next token, i.e. after yielding one.
    """

    def __init__(self, backend: str, timeouts: TimeoutsConfig) -> None:
        self.backend = backend
        self.timeouts = timeouts
        self.start = self._mark = time.monotonic()
        self.tokens = 0
        self._kind = "first"

    def tick(self, tokens: int = 1) -> None:
        """Records `tokens` tokens; the next one is due within `between_tokens_s`."""
        self.tokens += tokens
        self._mark = time.monotonic()

    def remaining(self) -> float:
        """Seconds until the nearest deadline (0 when already past)."""
        t = self.timeouts
        gap = t.first_token_s if self.tokens == 0 else t.between_tokens_s
        self._kind = "first" if self.tokens == 0 else "stall"
        deadline = self._mark + gap
        if self.start + t.total_s <= deadline:
            deadline, self._kind = self.start + t.total_s, "total"
        return max(0.0, deadline - time.monotonic())

    def expired(self) -> BackendUnavailable:
        """The error for the deadline that `remaining()` last reported."""
        t = self.timeouts
        if self._kind == "total":
            reason = f"request exceeded the total timeout of {t.total_s:g} s"
        elif self._kind == "first":
            reason = f"first-token timeout: no token within {t.first_token_s:g} s"
        else:
            gap, n = t.between_tokens_s, self.tokens
            reason = f"stream stalled: no token for {gap:g} s after {n} tokens"
        return BackendUnavailable(self.backend, reason)


def transport_error(backend: str, exc: WireError, secret: str | None = None) -> RouterError:
    """A readable BackendUnavailable for a transport failure (backends/wire.py)."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, wire.ConnectTimeout):
        reason = "connect timeout"
    elif isinstance(exc, wire.ConnectFailed):
        reason = "connection refused" if exc.refused else f"cannot connect ({text})"
    elif isinstance(exc, wire.ClosedMidBody):
        reason = f"stream closed before completion ({text})"
    elif isinstance(exc, wire.ClosedBeforeResponse):
        reason = f"connection closed before a response ({text})"
    elif isinstance(exc, wire.ConnectionReset):
        reason = f"connection reset ({text})"
    elif isinstance(exc, wire.PoolBusy):
        reason = text
    elif isinstance(exc, wire.ProtocolError):
        reason = f"malformed response: {text}"
    else:
        reason = f"{type(exc).__name__}: {text}"
    return BackendUnavailable(backend, redact(reason, secret))


def parse_retry_after(value: str | None, limit_s: float = MAX_EJECTION_S) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP-date, at most `limit_s`.

    None if absent, garbage, NaN or negative; a huge number (`inf`, `1e12`, a date in 2100) is
    capped at `limit_s` (by default the longest ejection the config allows; the health tracker
    caps again at `health.max_ejection_s`). A date in the past is 0.
    """
    if not value or len(value) > 64:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value.strip())
        except (TypeError, ValueError, OverflowError, IndexError):
            return None
        if when.tzinfo is None:  # "-0000": UTC, by RFC 5322
            when = when.replace(tzinfo=datetime.UTC)
        seconds = max(0.0, when.timestamp() - time.time())
    if math.isnan(seconds) or seconds < 0:
        return None
    return min(seconds, limit_s)


def body_snippet(body: bytes, secret: str | None = None) -> str:
    """A short readable excerpt of an error body: the JSON error message if any, else the text."""
    text = body.decode("utf-8", errors="replace")
    with contextlib.suppress(ValueError, RecursionError):  # RecursionError: nested too deep
        doc = json.loads(text)
        err = doc.get("error", doc) if isinstance(doc, dict) else doc
        if isinstance(err, dict):
            parts = [err.get("type"), err.get("message") or err.get("detail")]
            found = ": ".join(str(p) for p in parts if p)
            text = found or text
        elif isinstance(err, str):
            text = err
    text = " ".join(redact(text, secret).split())
    return text[:SNIPPET_CHARS] + ("..." if len(text) > SNIPPET_CHARS else "")


def status_error(
    backend: str,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    secret: str | None = None,
) -> RouterError:
    """The error for a non-2xx answer; see the module docstring for which status means what.

    `headers` has lower-case names."""
    snippet = body_snippet(body, secret)
    reason = f"HTTP {status}" + (f": {snippet}" if snippet else "")
    if status in _BAD_REQUEST:
        return InvalidArgument("messages", f"backend {backend} rejected the request ({reason})")
    retry = None
    if status in (429, 503):
        retry = parse_retry_after(headers.get("retry-after"))
    if status in (401, 403):
        reason += " (check the API key)"
    return BackendUnavailable(backend, reason, retry_after_s=retry)


def field(doc: Any, name: str) -> dict[str, Any]:
    """`doc[name]` when both are JSON objects, else an empty dict (for tolerant parsing)."""
    value = doc.get(name) if isinstance(doc, dict) else None
    return value if isinstance(value, dict) else {}


def token_count(value: Any, limit: int = MAX_REPORTED_TOKENS) -> int | None:
    """A token count an upstream reported, or None unless a whole number in [0, `limit`].

    Booleans, NaN, infinities, negative and absurdly large numbers are not counts; the caller
    then counts for itself.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not value.is_integer():  # also NaN and +-inf
        return None
    return int(value) if 0 <= value <= limit else None


def parse_json(backend: str, data: str, secret: str | None = None) -> dict[str, Any]:
    """One SSE event's JSON object, or BackendUnavailable naming the malformed data.

    orjson first (~4x faster than json on a typical chunk); what it refuses (NaN, integers past
    64 bits, nesting past 1024) goes to the standard decoder, so the same documents are accepted.
    """
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        try:
            doc = json.loads(data)
        except (ValueError, RecursionError):  # RecursionError: nested too deep
            doc = None
    if not isinstance(doc, dict):
        snippet = redact(data, secret)[:80]
        reason = f"malformed stream: event data is not a JSON object: {snippet!r}"
        raise BackendUnavailable(backend, reason)
    return doc
