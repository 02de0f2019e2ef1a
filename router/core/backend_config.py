"""Config fields every backend shares, for the backend modules that define their own models.

Each backend module owns its config model, a subclass of `BackendCommon` (HTTP backends: of
`HttpBackendCommon`) that adds its own fields and a `tier`; the router's config schema
(router/config/schema.py) validates each `backends:` entry with the model its `type:` names in the
plugin registry. This module imports nothing else of the project but the shared types.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from router.core.types import Tier

Trust = Literal["edge", "self_hosted", "third_party"]
Feature = Literal["streaming", "tools", "json_mode", "json_schema", "vision"]


# The trust a tier implies when none is configured (any other tier: third_party).
_NATURAL_TRUST: dict[Tier, Trust] = {Tier.EDGE: "edge", Tier.CLOUD_GPU: "self_hosted"}

MAX_EJECTION_S = 86_400.0  # a day: no ejection or cool-down lasts longer, whatever is configured


class StrictModel(BaseModel):
    """Config models refuse unknown fields and inf/NaN numbers, and are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class PriceConfig(StrictModel):
    """Prices in US dollars."""

    input_per_mtok: float = Field(0.0, ge=0, description="per million prompt tokens")
    output_per_mtok: float = Field(0.0, ge=0, description="per million completion tokens")
    per_request: float = Field(0.0, ge=0, description="flat fee per request")


class PerformanceConfig(StrictModel):
    """Starting speeds for latency estimates; observed requests refine them online (EWMA)."""

    prefill_tokens_per_s: float = Field(2000.0, gt=0, description="prompt processing rate")
    decode_tokens_per_s: float = Field(50.0, gt=0, description="generation rate per request")
    rtt_ms: float = Field(0.0, ge=0, description="network round trip to the backend")


class BackendCommon(StrictModel):
    """Fields every backend type has; `type` names the backend plugin (router/core/registry.py)."""

    type: str = Field(min_length=1, description="a registered backend type")
    model: str = Field(min_length=1, description="the model name clients may ask for")
    aliases: list[str] = Field(default_factory=list)
    context_window: int = Field(4096, gt=0, le=1_048_576)
    price: PriceConfig = PriceConfig()
    region: str = "local"
    trust: Trust | None = None
    features: list[Feature] = Field(default_factory=lambda: ["streaming"])
    performance: PerformanceConfig = PerformanceConfig()

    # Each backend type provides `tier` (a fixed property, or a field where it is configurable).

    @property
    def effective_trust(self) -> Trust:
        """The configured trust, else the tier's natural one."""
        if self.trust:
            return self.trust
        return _NATURAL_TRUST.get(self.tier, "third_party")

    @property
    def simulated_capacity(self) -> tuple[int, int]:
        """(requests run at once, requests accepted running + queued) for `tokenrouter replay`'s
        simulated backend, as the live backend's Load reports them; 0: no limit."""
        limit = int(getattr(self, "max_concurrency", 0))
        return limit, limit

    def problems(self) -> list[tuple[tuple[str, ...], str]]:
        """What `tokenrouter policy validate` finds wrong beyond the schema, each as (field path
        below the backend's entry, reason); e.g. llama.cpp: a GGUF that cannot be found. Run by
        router/config/validate.py (`tokenrouter policy validate`, the admin API, reloads), in a
        worker thread where it may touch files. Default: nothing."""
        return []


class TimeoutsConfig(StrictModel):
    """HTTP backend timeouts in seconds; the gRPC deadline bounds them all."""

    connect_s: float = Field(5.0, gt=0)
    first_token_s: float = Field(30.0, gt=0, description="from sending to the first token")
    between_tokens_s: float = Field(30.0, gt=0, description="longest gap between tokens")
    total_s: float = Field(600.0, gt=0)


_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz")


def checked_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """`headers` by lower-case name (a later one replaces an earlier); ValueError for a name
    that is not an HTTP token, or a value with a line break, a NUL or a non-Latin-1 character
    (which could smuggle a header or not be sent at all)."""
    out: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        if not key or not _TOKEN.issuperset(key):
            raise ValueError(f"header name {name!r} is not an HTTP token")
        if any(c in value for c in "\r\n\0") or (not value.isascii() and not _latin1(value)):
            raise ValueError(f"header {name}: value has a line break, NUL or non-Latin-1 text")
        out[key] = value
    return out


def _latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


class HttpBackendCommon(BackendCommon):
    """Fields of backends reached over HTTP."""

    base_url: str = Field(min_length=1)
    api_key_env: str | None = Field(None, description="environment variable holding the key")
    upstream_model: str | None = Field(None, description="model name sent upstream; default: model")
    max_connections: int = Field(64, ge=1, description="keep-alive pool size")
    max_concurrency: int = Field(0, ge=0, description="requests at once; 0: unlimited")
    headers: dict[str, str] = Field(default_factory=dict, description="extra request headers")
    timeouts: TimeoutsConfig = TimeoutsConfig()

    @field_validator("headers")
    @classmethod
    def _sendable_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        """Header names are HTTP tokens; values hold no line break, NUL or non-Latin-1 text."""
        checked_headers(headers.items())
        return headers

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        """An http(s) URL with a host and a valid port, and no credentials in it."""
        try:
            parts = urllib.parse.urlsplit(url.strip())
            parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
        except ValueError as exc:
            raise ValueError(f"not a valid URL: {exc}") from None
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{url!r} is not an http:// or https:// URL with a host")
        if parts.username is not None or parts.password is not None:
            raise ValueError("must not hold credentials: put the key in api_key_env")
        return url
