"""Traces of real HTTP calls: the server span under the caller's `traceparent` header, with the
placement and attempt spans under it, on both faces."""

from __future__ import annotations

import httpx
import pytest
from opentelemetry.trace import SpanKind

from tests.router.http.conftest import scripted_config
from tests.router.observability.test_tracing import exporter, finished, one, traceparent

__all__ = ["exporter"]  # the fixture


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
async def test_an_http_call_is_traced_under_its_traceparent(start_http, exporter, path) -> None:
    """One streamed call gives a SERVER span `POST <path>` in the caller's trace with its HTTP
    status, and the placement and attempt spans as its descendants."""
    running = await start_http(scripted_config())
    trace_id, parent_id, header = traceparent()
    body = {"model": "auto", "max_tokens": 8, "stream": True}
    body["messages"] = [{"role": "user", "content": "hi"}]
    async with httpx.AsyncClient(base_url=running.base_url, timeout=30) as client:
        response = await client.post(path, json=body, headers={"traceparent": header})
    assert response.status_code == 200
    spans = await finished(exporter, f"POST {path}")
    server = one(spans, f"POST {path}")
    assert server.kind == SpanKind.SERVER and server.context.trace_id == trace_id
    assert server.parent is not None and server.parent.span_id == parent_id
    assert server.attributes["http.response.status_code"] == 200
    assert server.attributes["tokenrouter.request_id"]
    by_id = {s.context.span_id: s for s in spans}
    for name in ("placement", "generation attempt"):
        span = one(spans, name)
        while span.parent is not None and span.parent.span_id in by_id:
            span = by_id[span.parent.span_id]
        assert span is server, f"{name} is not under the server span"
