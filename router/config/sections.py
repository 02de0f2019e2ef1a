"""Config sections read once at start (not on reload): `tracing:` and `state:`.

A reload that changes either keeps the running one and logs that it needs a restart
(router/api/server.py)."""

from __future__ import annotations

import enum
import importlib.util
from typing import Literal

from pydantic import Field, field_validator, model_validator

from router.core.backend_config import StrictModel

OTEL_PACKAGES = ("opentelemetry.sdk.trace", "opentelemetry.exporter.otlp.proto.http")


class TracingConfig(StrictModel):
    """OpenTelemetry tracing (router/observability/tracing.py); read at start, not on reload.

    Needs the `otel` extra. Unset fields fall back to the standard OTEL_* environment
    variables (OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER)."""

    enabled: bool = Field(False, description="trace requests (pip install 'tokenrouter[otel]')")
    otlp_endpoint: str | None = Field(
        None,
        min_length=1,
        max_length=2048,
        description="OTLP/HTTP traces URL, e.g. http://collector:4318/v1/traces",
    )
    service_name: str | None = Field(
        None, min_length=1, max_length=256, description="default: OTEL_SERVICE_NAME or tokenrouter"
    )
    sample_ratio: float | None = Field(
        None, ge=0, le=1, description="share of new traces sampled; default: OTEL_TRACES_SAMPLER"
    )

    @field_validator("otlp_endpoint")
    @classmethod
    def _url(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL (OTLP over HTTP)")
        return url

    @field_validator("enabled")
    @classmethod
    def _installed(cls, enabled: bool) -> bool:
        if enabled:
            missing = [name for name in OTEL_PACKAGES if not _importable(name)]
            if missing:
                raise ValueError(
                    f"tracing needs {', '.join(missing)}: pip install 'tokenrouter[otel]'"
                )
        return enabled


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a parent package is missing
        return False


class FailMode(enum.StrEnum):
    """What a kind of shared state does while Redis is unreachable."""

    CLOSED = "closed"  # refuse what needs it, with UNAVAILABLE naming the state store
    OPEN = "open"  # account locally; the overspend is bounded, counted and logged


class OnUnavailable(StrictModel):
    """Per kind of shared state, fail closed or open while Redis is unreachable."""

    budgets: FailMode = Field(FailMode.CLOSED, description="the budget policy's spend")
    rate_limits: FailMode = Field(FailMode.CLOSED, description="the rate-limit policy's windows")
    capacity: FailMode = Field(FailMode.OPEN, description="fleet-wide in-flight slots")


class StateConfig(StrictModel):
    """Where budgets, rate limits, fleet capacity and health live (router/state/).

    `memory` (the default): in this process only; several workers or pods each count alone.
    `redis`: one truth for every process that names the same Redis and prefix."""

    backend: Literal["memory", "redis"] = "memory"
    url: str | None = Field(
        None,
        min_length=1,
        max_length=2048,
        description="redis://host:port/db, rediss:// (TLS) or unix:///path; no password here",
    )
    url_env: str | None = Field(
        None, min_length=1, max_length=256, description="environment variable holding the URL"
    )
    prefix: str = Field("tokenrouter:", min_length=1, max_length=128, description="key prefix")
    lease_s: float = Field(
        30.0, ge=1, le=3600, description="a dead router's holds and slots come back after this"
    )
    timeout_ms: float = Field(250.0, gt=0, le=60_000, description="per Redis call, at most")
    max_connections: int = Field(64, ge=1, le=10_000, description="Redis connections per process")
    retry_s: float = Field(
        1.0, gt=0, le=600, description="after a failure, Redis counts as down this long"
    )
    sync_interval_s: float = Field(
        1.0, gt=0, le=600, description="how often shared health and fleet figures are read"
    )
    on_unavailable: OnUnavailable = OnUnavailable()

    @field_validator("url")
    @classmethod
    def _scheme(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return url

    @model_validator(mode="after")
    def _located(self) -> StateConfig:
        if self.backend == "redis" and not (self.url or self.url_env):
            raise ValueError("backend redis needs url or url_env")
        return self
