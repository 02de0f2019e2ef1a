"""Setting tracing up from the `tracing:` config at server start, and flushing it at stop.

`setup` builds an OpenTelemetry TracerProvider (its resource's service.name, its sampler) and,
when an OTLP endpoint is known, a BatchSpanProcessor exporting over OTLP/HTTP from its own
thread, so the event loop never waits for the collector. It installs the provider's tracer for
the spans of router/observability/tracing.py; `TracingSetup.shutdown` flushes what is queued
and puts the previous tracer back (blocking: call it from a thread).

The provider is not made the global one (OpenTelemetry allows setting that once per process),
so several servers in one process, or tests, each get their own. Unset config fields fall back
to the standard environment variables: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (or
OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces) with OTEL_EXPORTER_OTLP_[TRACES_]HEADERS,
OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER[_ARG]; OTEL_SDK_DISABLED=true
turns tracing off.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import structlog

from router.core.errors import ConfigError
from router.observability import tracing

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Tracer

    from router.config import TracingConfig

log = structlog.get_logger("tokenrouter")

DEFAULT_SERVICE_NAME = "tokenrouter"
ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
INSTALL_HINT = "pip install 'tokenrouter[otel]'"


class TracingSetup:
    """A provider this module built and installed; `shutdown` flushes and uninstalls it."""

    def __init__(self, provider: TracerProvider, previous: Tracer | None, exporting: bool) -> None:
        self.provider = provider
        self.exporting = exporting  # an OTLP exporter is attached
        self._previous = previous

    def shutdown(self) -> None:
        """Exports what is queued, stops the export thread, restores the previous tracer
        (blocking, bounded by the exporter's timeout)."""
        tracing.install(self._previous)
        self.provider.shutdown()


def setup(config: TracingConfig) -> TracingSetup | None:
    """Builds and installs the tracer `config` asks for; None when tracing is off.

    Raises ConfigError at `tracing.enabled` when the otel extra is not installed."""
    if not config.enabled:
        return None
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        log.info("tracing disabled by OTEL_SDK_DISABLED")
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
    except ImportError as exc:
        reason = f"tracing needs OpenTelemetry ({exc.name} is missing): {INSTALL_HINT}"
        raise ConfigError("<server>", "tracing.enabled", reason) from None
    name = config.service_name or os.environ.get("OTEL_SERVICE_NAME") or DEFAULT_SERVICE_NAME
    ratio = config.sample_ratio
    sampler = None if ratio is None else ParentBased(TraceIdRatioBased(ratio))  # None: env
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}), sampler=sampler)
    endpoint = config.otlp_endpoint or next(
        (os.environ[v] for v in ENDPOINT_VARIABLES if os.environ.get(v)), None
    )
    if endpoint:
        # endpoint=None lets the exporter read the variables itself (adding /v1/traces).
        exporter = OTLPSpanExporter(endpoint=config.otlp_endpoint)
        provider.add_span_processor(BatchSpanProcessor(exporter))
    else:
        log.warning(
            "tracing is enabled but no OTLP endpoint is set (tracing.otlp_endpoint or "
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT): spans are not exported"
        )
    previous = tracing.install(provider.get_tracer("tokenrouter"))
    log.info("tracing", service_name=name, otlp_endpoint=endpoint, sample_ratio=ratio)
    return TracingSetup(provider, previous, exporting=bool(endpoint))
