"""OpenTelemetry spans of a request: one server span per call, one per placement, one per attempt.

Tracing is optional (the `otel` extra) and off unless a tracer is installed: by the server at
start from the `tracing:` config (router/observability/tracing_setup.py), or by a test with
`install`. Off, every entry point returns at its first check, and nothing here ever runs per
token: spans are started and ended once per call, placement and attempt.

A trace of one Generate:

    tokenrouter.v1.TokenRouter/Generate   SERVER, child of the caller's W3C `traceparent`
    ├── placement                         backend chosen, tier, solver, decision_us, ...
    ├── generation attempt                backend, model, attempt, tokens, ttft_ms, finish
    ├── placement                         (after a fallback: the next backend)
    └── generation attempt

The server span's context is attached (OTel's current context) for the handler's duration, in
the handler's own coroutine (`request_span`, `grpc_span`). `generation.generate` is an async
generator, so it never attaches anything: it reads the current context once at its start
(`current()`) and starts its spans with that explicit parent, ending them in its own exits.

`extract` takes the parent from gRPC metadata or HTTP headers, bounded: an oversized
`traceparent` or `tracestate` is ignored, and only those two keys are ever looked at.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from router.core.errors import RouterError

try:
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError:  # the otel extra is not installed: tracing stays off
    trace = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Span, Tracer

    from router.core.types import Decision, Request
    from router.runtime.attempt import Attempt

T = TypeVar("T")

MAX_TRACEPARENT_CHARS = 128  # version 00 is 55 characters; a future version may be longer
MAX_TRACESTATE_CHARS = 512  # what W3C asks every vendor to propagate
MAX_STATUS_CHARS = 256  # an error's message in a span status

_tracer: Tracer | None = None
_propagator = TraceContextTextMapPropagator() if trace is not None else None


def install(tracer: Tracer | None) -> Tracer | None:
    """Makes `tracer` the one spans come from (None: tracing off); returns the previous one."""
    global _tracer
    previous, _tracer = _tracer, tracer
    return previous


def enabled() -> bool:
    """True while a tracer is installed."""
    return _tracer is not None


def extract(carrier: Iterable[tuple[str, Any]] | None) -> Context | None:
    """The W3C trace context in `carrier` (gRPC metadata or HTTP header pairs), or None.

    Only `traceparent` and `tracestate` are read, the first of each (keys in any case); a
    traceparent over MAX_TRACEPARENT_CHARS is ignored with its tracestate, a tracestate over
    MAX_TRACESTATE_CHARS alone. Binary (non-str) values are skipped. An invalid traceparent
    yields a context without a parent span (the propagator checks its syntax)."""
    if _propagator is None or carrier is None:
        return None
    found: dict[str, str] = {}
    for key, value in carrier:
        if len(key) not in (10, 11) or not isinstance(value, str):
            continue
        name = key.lower()
        if name in ("traceparent", "tracestate") and name not in found:
            found[name] = value
    parent = found.get("traceparent")
    if parent is None or len(parent) > MAX_TRACEPARENT_CHARS:
        return None
    state = found.get("tracestate")
    if state is not None and len(state) > MAX_TRACESTATE_CHARS:
        del found["tracestate"]
    return _propagator.extract(found)


@contextlib.contextmanager
def request_span(
    name: str,
    carrier: Iterable[tuple[str, Any]] | None,
    request: Request | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[Span | None]:
    """A SERVER span for one call of a face, child of the trace context in `carrier`.

    Yields the span (None when tracing is off), its context attached as the current one
    until the block ends, so a Generate or Route run inside it parents its spans to it. An
    exception leaving the block is recorded as the span's error status. Use it around the
    whole handler, in the handler's own coroutine (never across a generator's yields)."""
    if _tracer is None:
        yield None
        return
    span, token = _start_server(_tracer, name, carrier, attributes)
    if request is not None and span.is_recording():
        span.set_attributes(
            {"tokenrouter.request_id": request.request_id, "tokenrouter.tenant": request.tenant}
        )
    try:
        yield span
    except BaseException as exc:
        fail(span, exc)
        raise
    finally:
        otel_context.detach(token)
        span.end()


def _start_server(
    tracer: Tracer,
    name: str,
    carrier: Iterable[tuple[str, Any]] | None,
    attributes: Mapping[str, Any] | None,
) -> tuple[Span, object]:
    """Starts a SERVER span under the carrier's trace context and attaches it as current;
    the caller detaches the token and ends the span, in the same coroutine."""
    parent = extract(carrier)
    span = tracer.start_span(name, context=parent, kind=SpanKind.SERVER, attributes=attributes)
    return span, otel_context.attach(trace.set_span_in_context(span, parent))


Handler = Callable[[Any, Any, Any], Awaitable[T]]


def grpc_span(service: str, method: str) -> Callable[[Handler[T]], Handler[T]]:
    """Decorates a gRPC aio servicer method with a SERVER span like `request_span`'s, its
    parent taken from the call's metadata; the span gets the rpc.* attributes and the status
    code the call ends with (an abort's code, read back from the servicer context)."""
    name = f"{service}/{method}"
    attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": method}

    def decorate(handler: Handler[T]) -> Handler[T]:
        @functools.wraps(handler)
        async def traced(self: Any, request: Any, context: Any) -> T:
            tracer = _tracer
            if tracer is None:
                return await handler(self, request, context)
            span, token = _start_server(tracer, name, context.invocation_metadata(), attributes)
            try:
                result = await handler(self, request, context)
            except BaseException as exc:
                _grpc_failed(span, context, exc)
                raise
            else:
                span.set_attribute("rpc.grpc.status_code", 0)
            finally:
                otel_context.detach(token)
                span.end()
            return result

        return traced

    return decorate


def _grpc_failed(span: Span, context: Any, exc: BaseException) -> None:
    """Records how a gRPC call failed: the code it aborted with (the service turns every
    error into an abort), else the exception (a cancelled call)."""
    code = context.code()
    if code is None or not span.is_recording():
        fail(span, exc)
        return
    number = code.value[0] if isinstance(code.value, tuple) else int(code.value)
    span.set_attribute("rpc.grpc.status_code", number)
    span.set_attribute("error.type", code.name)
    span.set_status(Status(StatusCode.ERROR, _short(context.details() or code.name)))


class RequestTrace:
    """The spans of one Generate or Route below its server span (`current()` makes one)."""

    __slots__ = ("_parent", "_tracer")

    def __init__(self, tracer: Tracer, parent: Context) -> None:
        self._tracer = tracer
        self._parent = parent

    async def placement(
        self, placing: Awaitable[tuple[Decision, T]], request: Request, attempt: int
    ) -> tuple[Decision, T]:
        """Awaits `placing` (the batcher's place) inside a "placement" span."""
        span = self._tracer.start_span(
            "placement",
            context=self._parent,
            attributes={
                "tokenrouter.request_id": request.request_id,
                "tokenrouter.tenant": request.tenant,
                "tokenrouter.attempt": attempt,
            },
        )
        try:
            result = await placing
        except BaseException as exc:
            fail(span, exc)
            raise
        else:
            if span.is_recording():
                span.set_attributes(_decision_attributes(result[0]))
        finally:
            span.end()
        return result

    def attempt(self, decision: Decision, attempt: int) -> Span:
        """Starts the "generation attempt" span of an admitted decision (`end_attempt` ends it)."""
        return self._tracer.start_span(
            "generation attempt",
            context=self._parent,
            attributes={
                "tokenrouter.request_id": decision.request_id,
                "tokenrouter.backend": decision.backend,
                "gen_ai.request.model": decision.model,
                "tokenrouter.attempt": attempt,
            },
        )


def current() -> RequestTrace | None:
    """The trace of the request starting now, parented to the current context (the server
    span when called inside `request_span`), or None when tracing is off. Call it once, at
    the start of a request, in the caller's context."""
    tracer = _tracer
    if tracer is None:
        return None
    return RequestTrace(tracer, otel_context.get_current())


def end_attempt(span: Span | None, run: Attempt, error: BaseException | None = None) -> None:
    """Ends an attempt span with what the attempt used and how it ended (None: nothing)."""
    if span is None:
        return
    if span.is_recording():
        usage = run.usage
        attributes: dict[str, Any] = {
            "gen_ai.usage.input_tokens": usage.prompt_tokens,
            "gen_ai.usage.output_tokens": usage.completion_tokens,
            "tokenrouter.cost_usd": usage.cost_usd,
        }
        if usage.finish_reason:
            attributes["gen_ai.response.finish_reasons"] = (usage.finish_reason,)
        if run.first_token_at:
            attributes["tokenrouter.ttft_ms"] = (run.first_token_at - run.began) * 1e3
        span.set_attributes(attributes)
        if error is not None:
            fail(span, error)
    span.end()


def describe(request: Request) -> None:
    """Puts the request's id and tenant on the current server span (an HTTP face learns them
    only after reading the body)."""
    if _tracer is None:
        return
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attributes(
            {"tokenrouter.request_id": request.request_id, "tokenrouter.tenant": request.tenant}
        )


def http_status(span: Span, status: int) -> None:
    """Records the HTTP status answered; 5xx is the span's error."""
    if not span.is_recording():
        return
    span.set_attribute("http.response.status_code", status)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))


def fail(span: Span, exc: BaseException) -> None:
    """Records `exc` as the span's error: status ERROR with its message, and `error.type` (a
    router error's code, else the exception's class name)."""
    if not span.is_recording():
        return
    kind = str(exc.code) if isinstance(exc, RouterError) else type(exc).__name__
    span.set_attribute("error.type", kind)
    span.set_status(Status(StatusCode.ERROR, _short(str(exc) or kind)))


def _decision_attributes(decision: Decision) -> dict[str, Any]:
    return {
        "tokenrouter.backend": decision.backend,
        "gen_ai.request.model": decision.model,
        "tokenrouter.tier": str(decision.tier),
        "tokenrouter.profile": decision.profile,
        "tokenrouter.solver": decision.solver,
        "tokenrouter.decision_us": decision.decision_us,
        "tokenrouter.batch_size": decision.batch_size,
        "tokenrouter.prompt_tokens": decision.prompt_tokens,
        "tokenrouter.estimated_cost_usd": decision.estimated_cost_usd,
        "tokenrouter.config_version": decision.config_version,
    }


def _short(text: str) -> str:
    return text if len(text) <= MAX_STATUS_CHARS else text[: MAX_STATUS_CHARS - 1] + "…"
