"""What the HTTP backends share: client, event streams, API keys, token timeouts, limits, errors.

(The SSE parsing itself is in backends/sse.py.)

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
* more requests at once than `max_concurrency` -> `ResourceExhausted`, at once, without I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import email.utils
import errno
import json
import math
import os
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx

from backends.sse import sse_events, sse_lines
from router.core.backend_config import MAX_EJECTION_S, HttpBackendCommon, TimeoutsConfig
from router.core.errors import BackendUnavailable, InvalidArgument, ResourceExhausted, RouterError

SNIPPET_CHARS = 200
_ERROR_BODY_BYTES = 16_384
_BAD_REQUEST = frozenset({400, 413, 422})
MAX_PROBE_BYTES = 8 << 20  # the body of a probe's answer (vLLM /metrics, /slots, /models)
_RECODED = frozenset({"content-encoding", "content-length", "transfer-encoding"})
MAX_REPORTED_TOKENS = 2 * 1_048_576  # twice the largest context window a config may declare


def make_client(config: HttpBackendCommon) -> httpx.AsyncClient:
    """A keep-alive client: `max_connections` pooled connections, connect timeout from config.

    There is no read timeout at the httpx level: `TokenClock` bounds every wait instead.
    """
    # Idle connections expire before the common 5 s server keep-alive (uvicorn, so vLLM and
    # llama-cpp-python) closes them, so a request rarely lands on a connection being closed.
    n = config.max_connections
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n, keepalive_expiry=4.0)
    timeout = httpx.Timeout(None, connect=config.timeouts.connect_s)
    return httpx.AsyncClient(limits=limits, timeout=timeout, headers=dict(config.headers))


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

    def tick(self) -> None:
        """Records a token; the next one is due within `between_tokens_s`."""
        self.tokens += 1
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


def transport_error(
    backend: str, exc: BaseException, secret: str | None = None, *, streaming: bool = False
) -> RouterError:
    """A readable BackendUnavailable for an httpx transport failure (`streaming`: mid-body)."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectTimeout):
        reason = "connect timeout"
    elif isinstance(exc, httpx.ConnectError):
        refused = _has_errno(exc, errno.ECONNREFUSED) or "refused" in str(exc).lower()
        reason = "connection refused" if refused else f"cannot connect ({text})"
    elif isinstance(exc, httpx.RemoteProtocolError) and streaming:
        reason = f"stream closed before completion ({text})"
    elif isinstance(exc, httpx.RemoteProtocolError):
        reason = f"connection closed before a response ({text})"
    elif isinstance(exc, httpx.ReadError | httpx.WriteError):
        reason = f"connection reset ({text})"
    else:
        reason = f"{type(exc).__name__}: {text}"
    return BackendUnavailable(backend, redact(reason, secret))


def _has_errno(exc: BaseException | None, code: int) -> bool:
    for _ in range(10):  # along the chain of causes
        if exc is None or (isinstance(exc, OSError) and exc.errno == code):
            return exc is not None
        exc = exc.__cause__ or exc.__context__
    return False


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
    backend: str, response: httpx.Response, body: bytes, secret: str | None = None
) -> RouterError:
    """The error for a non-2xx answer; see the module docstring for which status means what."""
    status = response.status_code
    snippet = body_snippet(body, secret)
    reason = f"HTTP {status}" + (f": {snippet}" if snippet else "")
    if status in _BAD_REQUEST:
        return InvalidArgument("messages", f"backend {backend} rejected the request ({reason})")
    retry = None
    if status in (429, 503):
        retry = parse_retry_after(response.headers.get("retry-after"))
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
    """One SSE event's JSON object, or BackendUnavailable naming the malformed data."""
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):  # RecursionError: nested too deep
        doc = None
    if not isinstance(doc, dict):
        snippet = redact(data, secret)[:80]
        reason = f"malformed stream: event data is not a JSON object: {snippet!r}"
        raise BackendUnavailable(backend, reason)
    return doc


async def get_bounded(
    client: httpx.AsyncClient,
    url: str,
    backend: str,
    headers: dict[str, str],
    timeout: httpx.Timeout,
    limit: int = MAX_PROBE_BYTES,
) -> httpx.Response:
    """GETs `url` with its body read in full, but never more than `limit` bytes of it.

    A longer body raises BackendUnavailable naming `backend` (and the connection is dropped).
    httpx errors are the caller's to map.
    """
    request = client.build_request("GET", url, headers=headers, timeout=timeout)
    response = await client.send(request, stream=True)
    try:
        parts, size = [], 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > limit:
                raise BackendUnavailable(backend, f"answer of {url} is larger than {limit} bytes")
            parts.append(chunk)
    finally:
        await response.aclose()
    kept = [(k, v) for k, v in response.headers.items() if k.lower() not in _RECODED]
    return httpx.Response(
        response.status_code, headers=kept, content=b"".join(parts), request=request
    )


@contextlib.asynccontextmanager
async def open_stream(
    client: httpx.AsyncClient,
    request: httpx.Request,
    clock: TokenClock,
    secret: str | None = None,
) -> AsyncIterator[httpx.Response]:
    """Sends `request` and yields the streaming 2xx response; closes it however the body exits.

    Connecting and waiting for the headers count against the first-token deadline.
    """
    backend = clock.backend
    try:
        async with asyncio.timeout(clock.remaining()):
            response = await client.send(request, stream=True)
    except TimeoutError:
        raise clock.expired() from None
    except httpx.HTTPError as exc:
        raise transport_error(backend, exc, secret) from None
    try:
        if not 200 <= response.status_code < 300:
            body = b""
            with contextlib.suppress(httpx.HTTPError, TimeoutError):
                async with asyncio.timeout(min(clock.remaining(), 5.0)):
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) >= _ERROR_BODY_BYTES:
                            break
            raise status_error(backend, response, body, secret)
        yield response
    finally:
        await response.aclose()


class EventStream:
    """SSE events of a streaming response, each read within the clock's deadline; errors mapped.

    Iterate it for (event, data) pairs; after the last expected event call `drain()`, so that the
    rest of the body is read and the connection goes back to the keep-alive pool (a response
    closed unread closes its connection). `aclose()` (e.g. through contextlib.aclosing) releases
    the iterators.
    """

    def __init__(self, response: httpx.Response, clock: TokenClock, secret: str | None = None):
        self.clock = clock
        self.secret = secret
        self._chunks = response.aiter_bytes()
        self._lines = sse_lines(self._chunks, clock.backend)
        self._events = sse_events(self._lines, clock.backend)

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> tuple[str, str]:
        try:
            async with asyncio.timeout(self.clock.remaining()):
                return await anext(self._events)
        except TimeoutError:
            raise self.clock.expired() from None
        except httpx.HTTPError as exc:
            backend = self.clock.backend
            raise transport_error(backend, exc, self.secret, streaming=True) from None

    async def drain(self, limit_s: float = 1.0) -> None:
        """Reads the rest of a completed stream (at most `limit_s` seconds), ignoring it."""
        with contextlib.suppress(httpx.HTTPError, TimeoutError, BackendUnavailable):
            async with asyncio.timeout(min(limit_s, self.clock.remaining())):
                async for _ in self._lines:
                    pass

    async def aclose(self) -> None:
        for it in (self._events, self._lines, self._chunks):
            await it.aclose()  # type: ignore[attr-defined]
