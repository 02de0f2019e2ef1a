"""Tracing set up from the config: real OTLP/HTTP export to a collector stand-in, flushed at stop;
the OTEL_* environment variables; config errors naming the field; the extra not installed."""

from __future__ import annotations

import asyncio
import gzip
import os
import subprocess
import sys
import textwrap
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from router.api import router_pb2_grpc as pb_grpc
from router.api.server import RouterServer
from router.api.service import SERVICE
from router.config import TracingConfig
from router.core.errors import ConfigError
from router.observability import tracing, tracing_setup
from tests.conftest import loaded, request
from tests.router.observability.test_tracing import scripted, traceparent
from tests.router.runtime.test_fallback import collect

MAX_BODY = 16 * 1024 * 1024
ROOT = Path(__file__).resolve().parents[3]


class Collector:
    """A minimal OTLP/HTTP collector on a free port: keeps each POSTed export request."""

    def __init__(self) -> None:
        self.exports: list[ExportTraceServiceRequest] = []
        self.paths: list[str] = []
        self.server: asyncio.Server

    @property
    def endpoint(self) -> str:
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/v1/traces"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                lines = head.decode("latin-1").split("\r\n")
                self.paths.append(lines[0].split()[1])
                headers = dict(
                    (k.strip().lower(), v.strip())
                    for k, v in (h.split(":", 1) for h in lines[1:-2])
                )
                body = await reader.readexactly(min(int(headers["content-length"]), MAX_BODY))
                encoding = headers.get("content-encoding")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                self.exports.append(ExportTraceServiceRequest.FromString(body))
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n"
                    b"Content-Length: 0\r\n\r\n"
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def spans(self) -> list[tuple[str, str]]:
        """(service.name, span name) of every exported span."""
        out = []
        for export in self.exports:
            for rs in export.resource_spans:
                service = next(
                    a.value.string_value for a in rs.resource.attributes if a.key == "service.name"
                )
                out += [(service, s.name) for ss in rs.scope_spans for s in ss.spans]
        return out


@pytest.fixture
async def collector() -> AsyncIterator[Collector]:
    c = Collector()
    c.server = await asyncio.start_server(c.handle, "127.0.0.1", 0)
    yield c
    c.server.close()


async def test_spans_are_exported_over_otlp_and_flushed_at_stop(collector):
    """A server with `tracing.otlp_endpoint` sends a Generate's three spans to the collector
    by the time stop() returns, under service.name tokenrouter, and uninstalls its tracer."""
    config = scripted()
    config["tracing"] = {"enabled": True, "otlp_endpoint": collector.endpoint}
    server = await RouterServer.start(loaded(config), host="127.0.0.1", port=0)
    try:
        assert tracing.enabled() and server.tracing is not None and server.tracing.exporting
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = pb_grpc.TokenRouterStub(channel)
            metadata = (("traceparent", traceparent()[2]),)
            await collect(stub.Generate(request(max_tokens=3), metadata=metadata))
    finally:
        await server.stop(grace=0)
    assert not tracing.enabled()
    assert collector.paths and set(collector.paths) == {"/v1/traces"}
    assert sorted(collector.spans()) == sorted(
        ("tokenrouter", name) for name in (f"{SERVICE}/Generate", "placement", "generation attempt")
    )


def _attach_memory(setup: tracing_setup.TracingSetup) -> InMemorySpanExporter:
    memory = InMemorySpanExporter()
    setup.provider.add_span_processor(SimpleSpanProcessor(memory))
    return memory


def _clear_otel_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*tracing_setup.ENDPOINT_VARIABLES, "OTEL_SERVICE_NAME", "OTEL_SDK_DISABLED"):
        monkeypatch.delenv(name, raising=False)


def test_environment_variables_name_the_service_and_sample_ratio_zero_drops(monkeypatch):
    """OTEL_SERVICE_NAME names the service when the config does not; sample_ratio 0 records
    nothing; with no endpoint anywhere nothing exports; shutdown uninstalls the tracer."""
    _clear_otel_env(monkeypatch)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "router-eu")
    setup = tracing_setup.setup(TracingConfig(enabled=True))
    assert setup is not None and not setup.exporting
    memory = _attach_memory(setup)
    with tracing.request_span("call", None):
        pass
    (span,) = memory.get_finished_spans()
    assert span.resource.attributes["service.name"] == "router-eu"
    setup.shutdown()
    assert not tracing.enabled()

    setup = tracing_setup.setup(TracingConfig(enabled=True, sample_ratio=0, service_name="x"))
    assert setup is not None
    memory = _attach_memory(setup)
    with tracing.request_span("call", None) as span:
        assert span is not None and not span.is_recording()
    setup.shutdown()
    assert memory.get_finished_spans() == ()


def test_env_endpoint_and_sdk_disabled(monkeypatch):
    """OTEL_EXPORTER_OTLP_ENDPOINT alone makes the server export; OTEL_SDK_DISABLED=true turns
    configured tracing off; a disabled config sets nothing up."""
    _clear_otel_env(monkeypatch)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    setup = tracing_setup.setup(TracingConfig(enabled=True))
    assert setup is not None and setup.exporting
    setup.shutdown()
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert tracing_setup.setup(TracingConfig(enabled=True)) is None
    assert tracing_setup.setup(TracingConfig()) is None
    assert not tracing.enabled()


@pytest.mark.parametrize(
    ("section", "path"),
    [
        ({"enabled": True, "otlp_endpoint": "collector:4318"}, "tracing.otlp_endpoint"),
        ({"enabled": True, "sample_ratio": 1.5}, "tracing.sample_ratio"),
        ({"enable": True}, "tracing.enable"),
    ],
)
def test_bad_tracing_config_names_the_field(section, path):
    """A bad tracing section is a ConfigError at the field's YAML path."""
    config = scripted()
    config["tracing"] = section
    with pytest.raises(ConfigError) as err:
        loaded(config)
    assert err.value.path == path


def test_without_the_extra_tracing_is_off_and_enabling_it_says_what_to_install():
    """With opentelemetry not importable, the router imports and serves untraced, while a
    config enabling tracing fails at tracing.enabled naming the extra to install."""
    script = textwrap.dedent(
        """
        import sys
        sys.modules["opentelemetry"] = None  # as if the otel extra were not installed
        from router.api import service
        from router.config import TracingConfig
        from router.core.errors import ConfigError
        from router.observability import tracing, tracing_setup
        from tests.conftest import loaded

        assert tracing.extract([("traceparent", "00-" + "1" * 32 + "-" + "1" * 16 + "-01")]) is None
        assert tracing.current() is None
        with tracing.request_span("x", None) as span:
            assert span is None
        backend = {"type": "scripted", "model": "a", "context_window": 8192}
        config = {"backends": {"gpu": backend}, "tracing": {"enabled": True}}
        try:
            loaded(config)
        except ConfigError as exc:
            print("schema", exc.path, exc.reason)
        try:
            tracing_setup.setup(TracingConfig.model_construct(enabled=True))
        except ConfigError as exc:
            print("setup", exc.path, exc.reason)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=env,
    )
    assert run.returncode == 0, run.stderr
    out = run.stdout.splitlines()
    assert len(out) == 2
    for line, where in zip(out, ("schema", "setup"), strict=True):
        assert line.startswith(f"{where} tracing.enabled ")
        assert "pip install 'tokenrouter[otel]'" in line
