"""Traces of real gRPC calls, read back with the SDK's in-memory exporter: the server span under
the caller's `traceparent`, a placement span and one attempt span per backend tried; no tracer,
no spans; a bad or oversized trace context is ignored."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from router.api.service import SERVICE
from router.core.errors import InvalidArgument
from router.core.types import ChatMessage, Request
from router.observability import tracing
from tests.conftest import request
from tests.fakes.fake_upstream import FakeUpstream, Script
from tests.router.runtime.test_fallback import collect, fleet

GENERATE = f"{SERVICE}/Generate"


def scripted(**backend: Any) -> dict[str, Any]:
    """One scripted backend "gpu" under the capability policy."""
    spec = {"type": "scripted", "model": "a", "context_window": 8192, **backend}
    return {
        "backends": {"gpu": spec},
        "policies": {"capability": {"type": "capability"}},
        "profiles": {"default": {"policies": [{"policy": "capability"}]}},
    }


@pytest.fixture
async def second_upstream():
    """The fallback's scripted upstream."""
    server = await FakeUpstream.start()
    yield server
    await server.close()


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    """An SDK provider exporting to memory, its tracer installed for the test, removed after."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    previous = tracing.install(provider.get_tracer("test"))
    yield memory
    tracing.install(previous)
    provider.shutdown()


def traceparent() -> tuple[int, int, str]:
    """A fresh sampled W3C traceparent with its trace and span ids."""
    trace_id, span_id = secrets.randbits(128) | 1, secrets.randbits(64) | 1
    return trace_id, span_id, f"00-{trace_id:032x}-{span_id:016x}-01"


async def finished(memory: InMemorySpanExporter, name: str = GENERATE) -> list[ReadableSpan]:
    """The finished spans once the server span `name` has ended (it ends last)."""
    for _ in range(200):
        spans = list(memory.get_finished_spans())
        if any(s.name == name for s in spans):
            return spans
        await asyncio.sleep(0.01)
    raise AssertionError(f"no {name} span among {[s.name for s in spans]}")


def one(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    (span,) = [s for s in spans if s.name == name]
    return span


async def test_generate_trace_has_server_placement_and_attempt_spans(start_server, exporter):
    """A Generate carrying a traceparent yields a server span in that trace, and a placement
    and an attempt span under it, with the decision's and the usage's attributes."""
    srv = await start_server(scripted())
    trace_id, span_id, header = traceparent()
    call = srv.stub.Generate(request(max_tokens=5), metadata=(("traceparent", header),))
    (decision,), deltas, usage = await collect(call)
    spans = await finished(exporter)
    assert sorted(s.name for s in spans) == sorted([GENERATE, "placement", "generation attempt"])
    server = one(spans, GENERATE)
    assert server.kind is SpanKind.SERVER and server.context.trace_id == trace_id
    assert server.parent is not None and server.parent.span_id == span_id
    assert server.attributes["rpc.method"] == "Generate"
    assert server.attributes["rpc.grpc.status_code"] == 0
    for name in ("placement", "generation attempt"):
        child = one(spans, name)
        assert child.context.trace_id == trace_id
        assert child.parent.span_id == server.context.span_id
    placement = one(spans, "placement").attributes
    assert placement["tokenrouter.backend"] == decision.backend == "gpu"
    assert placement["tokenrouter.tier"] == "cloud_gpu"
    assert placement["tokenrouter.solver"] == decision.solver
    assert placement["tokenrouter.decision_us"] == decision.decision_us
    assert placement["tokenrouter.profile"] == "default"
    assert placement["tokenrouter.config_version"] == srv.server.router.loaded.version
    attempt = one(spans, "generation attempt")
    assert attempt.status.status_code is StatusCode.UNSET
    assert attempt.attributes["tokenrouter.backend"] == "gpu"
    assert attempt.attributes["gen_ai.request.model"] == "a"
    assert attempt.attributes["tokenrouter.attempt"] == 1
    assert attempt.attributes["gen_ai.usage.output_tokens"] == usage.completion_tokens == 5
    assert attempt.attributes["gen_ai.usage.input_tokens"] == usage.prompt_tokens
    assert attempt.attributes["gen_ai.response.finish_reasons"] == (usage.finish_reason,)
    assert attempt.attributes["tokenrouter.ttft_ms"] >= 0
    assert len(deltas) >= 1


async def test_fallback_yields_two_attempt_spans(start_server, exporter, upstream, second_upstream):
    """A backend failing before its first token gives a failed attempt span, then a second
    placement and attempt span for the fallback, all children of the server span."""
    srv = await start_server(fleet(upstream.base_url, second_upstream.base_url))
    upstream.script(Script(mode="status", status=500))
    trace_id, _, header = traceparent()
    call = srv.stub.Generate(request(max_tokens=5), metadata=(("traceparent", header),))
    decisions, _, usage = await collect(call)
    assert [d.backend for d in decisions] == ["primary", "secondary"]
    spans = await finished(exporter)
    server = one(spans, GENERATE)
    attempts = sorted(
        (s for s in spans if s.name == "generation attempt"),
        key=lambda s: s.attributes["tokenrouter.attempt"],
    )
    placements = [s for s in spans if s.name == "placement"]
    assert [s.attributes["tokenrouter.backend"] for s in attempts] == ["primary", "secondary"]
    assert sorted(s.attributes["tokenrouter.attempt"] for s in placements) == [1, 2]
    for span in (*attempts, *placements):
        assert span.parent.span_id == server.context.span_id
        assert span.context.trace_id == trace_id
    failed, fallback = attempts
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes["error.type"] == "UNAVAILABLE"
    assert fallback.status.status_code is StatusCode.UNSET
    assert fallback.attributes["gen_ai.usage.output_tokens"] == usage.completion_tokens


async def test_a_cancelled_generate_ends_its_spans(start_server, exporter, caplog):
    """A caller leaving mid-stream ends the attempt span with an error and the server span,
    without OpenTelemetry failing to detach the server span's context."""
    text = " ".join(f"w{i}" for i in range(50))
    srv = await start_server(scripted(text=text, token_interval_ms=20))
    call = srv.stub.Generate(request(max_tokens=50))
    while (await call.read()).WhichOneof("event") != "delta":
        pass
    call.cancel()
    spans = await finished(exporter)
    attempt = one(spans, "generation attempt")
    assert attempt.status.status_code is StatusCode.ERROR
    assert 1 <= attempt.attributes["gen_ai.usage.output_tokens"] < 50
    assert one(spans, GENERATE).status.status_code is StatusCode.ERROR
    assert not [r for r in caplog.records if "detach" in r.getMessage().lower()]


async def test_route_has_a_server_and_a_placement_span(start_server, exporter):
    """Route yields its server span and one placement span under it, no attempt span."""
    srv = await start_server(scripted())
    trace_id, span_id, header = traceparent()
    decision = await srv.stub.Route(request(), metadata=(("traceparent", header),))
    spans = await finished(exporter, f"{SERVICE}/Route")
    assert sorted(s.name for s in spans) == sorted([f"{SERVICE}/Route", "placement"])
    server, placement = one(spans, f"{SERVICE}/Route"), one(spans, "placement")
    assert server.parent.span_id == span_id and placement.context.trace_id == trace_id
    assert placement.parent.span_id == server.context.span_id
    assert placement.attributes["tokenrouter.backend"] == decision.backend


async def test_a_failed_call_records_its_grpc_status(start_server, exporter):
    """A Generate the face rejects ends its server span with ERROR and the call's gRPC code."""
    srv = await start_server(scripted())
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await collect(srv.stub.Generate(request(max_tokens=10**6)))
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    (server,) = await finished(exporter)
    assert server.status.status_code is StatusCode.ERROR
    assert "max_tokens" in server.status.description
    assert server.attributes["rpc.grpc.status_code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert server.attributes["error.type"] == "INVALID_ARGUMENT"


async def test_no_tracer_means_no_spans_and_no_error(start_server):
    """With no tracer installed, a traced call succeeds and no span is recorded anywhere."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    provider.get_tracer("unused")  # a provider exists, but the router was not given it
    assert not tracing.enabled() and tracing.current() is None
    srv = await start_server(scripted())
    _, _, header = traceparent()
    call = srv.stub.Generate(request(max_tokens=3), metadata=(("traceparent", header),))
    _, deltas, usage = await collect(call)
    assert usage.completion_tokens == 3 and deltas
    with tracing.request_span("x", [("traceparent", header)]) as span:
        assert span is None
    assert memory.get_finished_spans() == ()
    provider.shutdown()


@pytest.mark.parametrize(
    "metadata",
    [
        # a future version may carry more fields: the propagator would take it, the bound not
        (("traceparent", "cc-" + "f" * 32 + "-" + "1" * 16 + "-01-" + "0" * 200),),
        (("traceparent", "zz-not-a-trace-context"),),
        (("traceparent", "00-" + "0" * 32 + "-" + "0" * 16 + "-01"),),
    ],
    ids=["oversized", "malformed", "all-zero-ids"],
)
async def test_a_bad_traceparent_is_ignored(start_server, exporter, metadata):
    """An oversized, malformed or invalid traceparent leaves the server span a root of a new
    trace, and the call succeeds."""
    srv = await start_server(scripted())
    _, _, usage = await collect(srv.stub.Generate(request(max_tokens=2), metadata=metadata))
    assert usage.completion_tokens == 2
    spans = await finished(exporter)
    server = one(spans, GENERATE)
    assert server.parent is None and server.context.trace_id != int("f" * 32, 16)
    assert one(spans, "placement").parent.span_id == server.context.span_id


def test_extract_reads_only_bounded_trace_context_keys():
    """extract honours a valid traceparent in any key case, drops an oversized tracestate but
    keeps its traceparent, keeps a normal tracestate, and skips binary values."""
    trace_id, span_id, header = traceparent()

    def parent(carrier):
        return trace.get_current_span(tracing.extract(carrier)).get_span_context()

    got = parent([("Traceparent", header), ("tracestate", "a=1")])
    assert (got.trace_id, got.span_id) == (trace_id, span_id)
    assert got.trace_state.get("a") == "1"
    big = parent([("traceparent", header), ("tracestate", "a=" + "1" * 600)])
    assert big.trace_id == trace_id and len(big.trace_state) == 0
    assert tracing.extract([("traceparent", header.encode())]) is None
    assert tracing.extract([("x-other", header)]) is None
    assert tracing.extract(None) is None


def test_request_span_for_http_faces_parents_and_records_errors(exporter):
    """request_span (the HTTP faces' entry) continues the headers' trace, makes its span the
    current one inside the block, and records a router error leaving it."""
    trace_id, span_id, header = traceparent()
    req = Request("rid-1", "acme", (ChatMessage("user", "hi"),), 8, 0.0)
    headers = [("content-type", "application/json"), ("TraceParent", header)]
    with (
        pytest.raises(InvalidArgument),
        tracing.request_span("POST /v1/chat/completions", headers, req) as span,
    ):
        assert trace.get_current_span() is span
        raise InvalidArgument("messages", "at least one message is required")
    assert trace.get_current_span() is not span
    (done,) = exporter.get_finished_spans()
    assert done.parent.span_id == span_id and done.context.trace_id == trace_id
    assert done.attributes["tokenrouter.request_id"] == "rid-1"
    assert done.attributes["tokenrouter.tenant"] == "acme"
    assert done.attributes["error.type"] == "INVALID_ARGUMENT"
    assert done.status.description == "messages: at least one message is required"
