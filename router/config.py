"""The router's YAML configuration: schema, defaults and loading with precise error locations."""

from __future__ import annotations

import difflib
import hashlib
import os
import urllib.parse
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from router import yamlpos
from router.errors import ConfigError
from router.types import Tier

DEFAULT_CONFIG_NAME = "default_config.yaml"
MAX_EXPANDED_NODES = 100_000  # YAML values after alias expansion: no "billion laughs" config

Trust = Literal["edge", "self_hosted", "third_party"]
Feature = Literal["streaming", "tools", "json_mode"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class PriceConfig(_Strict):
    """Prices in US dollars."""

    input_per_mtok: float = Field(0.0, ge=0, description="per million prompt tokens")
    output_per_mtok: float = Field(0.0, ge=0, description="per million completion tokens")
    per_request: float = Field(0.0, ge=0, description="flat fee per request")


class PerformanceConfig(_Strict):
    """Starting speeds for latency estimates; observed requests refine them online (EWMA)."""

    prefill_tokens_per_s: float = Field(2000.0, gt=0, description="prompt processing rate")
    decode_tokens_per_s: float = Field(50.0, gt=0, description="generation rate per request")
    rtt_ms: float = Field(0.0, ge=0, description="network round trip to the backend")


class BackendCommon(_Strict):
    """Fields every backend type has."""

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
        return {Tier.EDGE: "edge", Tier.CLOUD_GPU: "self_hosted"}.get(self.tier, "third_party")


class LlamaCppConfig(BackendCommon):
    """An in-process GGUF model on CPU through llama-cpp-python."""

    type: Literal["llamacpp"]
    gguf: str = Field(
        min_length=1,
        description="a GGUF file path, or package:<distribution>/<file> for a GGUF a package ships",
    )
    context_window: int = Field(2048, gt=0, le=1_048_576)
    replicas: int = Field(1, ge=1, le=64, description="model instances; one generation each")
    max_queue: int = Field(16, ge=0, description="requests that may wait for a free instance")
    threads: int | None = Field(None, ge=1, description="CPU threads per instance; default: all")
    batch_size: int = Field(512, ge=1)
    seed: int = Field(-1, description="sampling seed; -1 for random")

    @property
    def tier(self) -> Tier:
        return Tier.EDGE


class ScriptedConfig(BackendCommon):
    """A scripted backend that streams fixed text: for demos, load tests and replays."""

    type: Literal["scripted"]
    tier: Tier = Tier.CLOUD_GPU
    text: str = "This is a scripted reply from tokenrouter."
    ttft_ms: float = Field(0.0, ge=0, description="delay before the first token")
    token_interval_ms: float = Field(0.0, ge=0, description="delay between tokens")
    max_concurrency: int = Field(0, ge=0, description="requests at once; 0: unlimited")


class TimeoutsConfig(_Strict):
    """HTTP backend timeouts in seconds; the gRPC deadline bounds them all."""

    connect_s: float = Field(5.0, gt=0)
    first_token_s: float = Field(30.0, gt=0, description="from sending to the first token")
    between_tokens_s: float = Field(30.0, gt=0, description="longest gap between tokens")
    total_s: float = Field(600.0, gt=0)


class HttpBackendCommon(BackendCommon):
    """Fields of backends reached over HTTP."""

    base_url: str = Field(min_length=1)
    api_key_env: str | None = Field(None, description="environment variable holding the key")
    upstream_model: str | None = Field(None, description="model name sent upstream; default: model")
    max_connections: int = Field(64, ge=1, description="keep-alive pool size")
    max_concurrency: int = Field(0, ge=0, description="requests at once; 0: unlimited")
    headers: dict[str, str] = Field(default_factory=dict, description="extra request headers")
    timeouts: TimeoutsConfig = TimeoutsConfig()

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


class OpenAIConfig(HttpBackendCommon):
    """Any OpenAI-compatible chat completions server (vLLM, TGI, SGLang, llama.cpp, OpenAI)."""

    type: Literal["openai"]
    tier: Tier = Tier.CLOUD_GPU
    metrics: Literal["auto", "vllm", "llamacpp", "none"] = Field(
        "auto", description="where to read load signals from"
    )


class AnthropicConfig(HttpBackendCommon):
    """Anthropic's Messages API."""

    type: Literal["anthropic"]
    tier: Tier = Tier.REMOTE_API
    base_url: str = "https://api.anthropic.com"
    api_key_env: str | None = "ANTHROPIC_API_KEY"
    anthropic_version: str = "2023-06-01"


BackendConfig = Annotated[
    LlamaCppConfig | ScriptedConfig | OpenAIConfig | AnthropicConfig, Field(discriminator="type")
]


class PolicyConfig(_Strict):
    type: str = Field(min_length=1, description="a registered policy type, kebab-case")
    parameters: dict[str, Any] = Field(default_factory=dict)


MAX_WEIGHT = 1000.0


class ProfilePolicy(_Strict):
    policy: str
    weight: float = Field(
        1.0,
        ge=0,
        le=MAX_WEIGHT,
        allow_inf_nan=False,
        description="how much the policy's score in [0, 1] counts in the total",
    )


class ProfileConfig(_Strict):
    policies: list[ProfilePolicy] = Field(default_factory=list)


class TlsConfig(_Strict):
    """TLS for both services; with `client_ca_file`, clients must present a certificate (mTLS)."""

    cert_file: str = Field(min_length=1, description="PEM server certificate (chain)")
    key_file: str = Field(min_length=1, description="PEM private key of the certificate")
    client_ca_file: str | None = Field(
        None, description="PEM CA bundle: require client certificates signed by it"
    )


class ReloadAllowConfig(_Strict):
    """What a config sent through the admin API may add beyond the running config's secrets."""

    env: list[str] = Field(
        default_factory=list, description="environment variables a sent config may newly read"
    )
    hosts: list[str] = Field(
        default_factory=list, description="host names a sent config may send a secret to"
    )


class ServerConfig(_Strict):
    host: str = Field("127.0.0.1", min_length=1, description="bind address, or unix:/path")
    port: int = Field(50051, ge=0, le=65535)
    grace_period_s: float = Field(10.0, ge=0)
    log_content: bool = Field(False, description="log message content (off: never logged)")
    admin_token_env: str = Field(
        "TOKENROUTER_ADMIN_TOKEN", description="environment variable holding the admin token"
    )
    admin_loopback: bool = Field(
        False, description="with no admin token: answer admin calls from 127.x and ::1"
    )
    tls: TlsConfig | None = None
    tenant_keys_file: str | None = Field(
        None, description="tenant API keys (tokenrouter keys create); set: keys are required"
    )
    reload_allow: ReloadAllowConfig = ReloadAllowConfig()
    max_receive_message_bytes: int = Field(
        4 * 1024 * 1024, ge=1024, le=256 * 1024 * 1024, description="largest request message"
    )
    watch_config: bool = Field(True, description="reload when the config file changes")
    request_log: str | None = Field(
        None, description="append one JSON line per request here (no content), for replays"
    )


class SchedulerConfig(_Strict):
    batch_window_ms: float = Field(
        0.0, ge=0, le=1000, description="wait this long to gather a batch (0: no timer)"
    )
    max_batch: int = Field(256, ge=1, le=4096, description="requests placed jointly at most")
    solver_time_limit_ms: float = Field(50.0, gt=0, le=10_000, description="CP-SAT time limit")


MAX_EJECTION_S = 86_400.0  # a day: no ejection or cool-down lasts longer, whatever is configured


class HealthConfig(_Strict):
    probe_interval_s: float = Field(10.0, gt=0, description="how often backends are probed")
    probe_timeout_s: float = Field(5.0, gt=0)
    unhealthy_after: int = Field(3, ge=1, description="consecutive failed probes")
    eject_after: int = Field(5, ge=1, description="consecutive failed requests")
    base_ejection_s: float = Field(30.0, gt=0, le=MAX_EJECTION_S)
    max_ejection_s: float = Field(
        300.0, gt=0, le=MAX_EJECTION_S, description="longest ejection or cool-down"
    )


class FallbackConfig(_Strict):
    max_attempts: int = Field(3, ge=1, le=10, description="backends tried per request, at most")


class DefaultsConfig(_Strict):
    profile: str = "default"
    max_tokens: int = Field(256, ge=1)
    temperature: float = Field(0.7, ge=0, le=2)


class LimitsConfig(_Strict):
    """Request size limits; beyond any of them a request gets INVALID_ARGUMENT naming the field."""

    max_tokens: int = Field(8192, ge=1, description="largest max_tokens a request may ask for")
    max_messages: int = Field(1024, ge=1)
    max_prompt_chars: int = Field(4_000_000, ge=1)
    max_id_chars: int = Field(
        256, ge=1, le=65_536, description="longest tenant, request_id, model and profile"
    )
    max_metadata_entries: int = Field(64, ge=0, le=65_536)
    max_metadata_key_chars: int = Field(128, ge=1, le=65_536)
    max_metadata_value_chars: int = Field(1024, ge=1, le=1_048_576)
    max_batch_requests: int = Field(
        1024, ge=1, le=65_536, description="requests one RouteBatch call may carry"
    )


class Config(_Strict):
    server: ServerConfig = ServerConfig()
    defaults: DefaultsConfig = DefaultsConfig()
    limits: LimitsConfig = LimitsConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    health: HealthConfig = HealthConfig()
    fallback: FallbackConfig = FallbackConfig()
    backends: dict[str, BackendConfig] = Field(min_length=1)
    policies: dict[str, PolicyConfig] = Field(default_factory=dict)
    profiles: dict[str, ProfileConfig] = Field(default_factory=lambda: {"default": ProfileConfig()})

    @model_validator(mode="after")
    def _references(self) -> Config:
        for pname, profile in self.profiles.items():
            for i, entry in enumerate(profile.policies):
                if entry.policy not in self.policies:
                    known = ", ".join(sorted(self.policies)) or "none defined"
                    close = difflib.get_close_matches(entry.policy, list(self.policies), n=1)
                    hint = f"; did you mean {close[0]!r}?" if close else ""
                    raise _PathError(
                        ("profiles", pname, "policies", i, "policy"),
                        f"unknown policy {entry.policy!r}{hint} (defined: {known})",
                    )
        if self.defaults.profile not in self.profiles:
            raise _PathError(
                ("defaults", "profile"), f"profile {self.defaults.profile!r} is not defined"
            )
        if self.defaults.max_tokens > self.limits.max_tokens:
            raise _PathError(("defaults", "max_tokens"), "exceeds limits.max_tokens")
        return self


class _PathError(ValueError):
    """A cross-field error that knows the YAML path it belongs to."""

    def __init__(self, path: tuple[str | int, ...], reason: str) -> None:
        super().__init__(reason)
        self.path = path


class LoadedConfig(BaseModel):
    """A validated config with where it came from and its content hash."""

    model_config = ConfigDict(frozen=True)

    config: Config
    source: str
    version: str
    text: str

    def error(self, path: tuple[str | int, ...], reason: str) -> ConfigError:
        """A ConfigError for `path` in this file, with its line and column."""
        line, col = yamlpos.locate(yamlpos.compose(self.text), path)
        return ConfigError(self.source, ".".join(map(str, path)), reason, line, col)


def default_config_text() -> str:
    """The embedded default config (one edge backend on SmolLM2-135M)."""
    return resources.files("router").joinpath(DEFAULT_CONFIG_NAME).read_text()


def load_config(path: str | os.PathLike[str] | None = None) -> LoadedConfig:
    """Loads and validates a config file, or the embedded default when `path` is None."""
    if path is None:
        return parse_config(default_config_text(), f"<embedded {DEFAULT_CONFIG_NAME}>")
    return parse_config(read_config_file(path), str(path))


def read_config_file(path: str | os.PathLike[str]) -> str:
    """A config file's text; a ConfigError naming the file when it cannot be read or is not
    UTF-8 (blocking: call it from a thread on the event loop)."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot read file: {exc.strerror or exc}") from exc
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        reason = f"not UTF-8 text: byte 0x{raw[exc.start]:02x} at offset {exc.start}"
        raise ConfigError(str(path), "", reason) from None


def parse_config(text: str, source: str) -> LoadedConfig:
    """Validates config text; errors name `source`, the YAML path, line, column and reason."""
    try:
        root = yamlpos.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        reason = f"invalid YAML: {getattr(exc, 'problem', exc)}"
        raise ConfigError(source, "", reason, line, col) from None
    if not isinstance(data, dict):
        raise ConfigError(source, "", "the top level must be a mapping")
    if (nodes := yamlpos.expanded_size(root)) > MAX_EXPANDED_NODES:
        reason = f"{nodes} values once aliases are expanded (at most {MAX_EXPANDED_NODES})"
        raise ConfigError(source, "", reason)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigErrors(config_errors(exc, source, root)) from None
    version = hashlib.sha256(text.encode()).hexdigest()[:12]
    return LoadedConfig(config=config, source=source, version=version, text=text)


class ConfigErrors(ConfigError):
    """Several problems in one file; behaves as the first, lists them all in `errors`."""

    def __init__(self, errors: list[ConfigError]) -> None:
        first = errors[0]
        super().__init__(first.file, first.path, first.reason, first.line, first.column)
        self.errors = errors


def config_errors(exc: ValidationError, source: str, root: yaml.Node | None) -> list[ConfigError]:
    """Every schema error, located in the file."""
    return [_config_error(err, source, root) for err in exc.errors()]


def _config_error(err: Any, source: str, root: yaml.Node | None) -> ConfigError:
    loc = list(err["loc"])
    reason = err["msg"]
    ctx_error = err.get("ctx", {}).get("error")
    if isinstance(ctx_error, _PathError):
        loc, reason = list(ctx_error.path), str(ctx_error)
    # Drop pydantic's discriminator tag (e.g. 'llamacpp') that is not in the YAML.
    if len(loc) >= 3 and loc[0] == "backends" and isinstance(loc[2], str):
        tagged = root is not None and yamlpos.locate(root, loc[:3]) == yamlpos.locate(root, loc[:2])
        if tagged:
            loc.pop(2)
    reason = reason.removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        reason = "unknown field"
    path = ".".join(str(p) for p in loc)
    line, col = yamlpos.locate(root, loc)
    return ConfigError(source, path, reason, line, col)
