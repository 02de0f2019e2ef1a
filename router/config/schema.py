"""The router's YAML configuration: schema, defaults and loading with precise error locations.

Backend entries are validated in two steps: `backends:` as a mapping, then each entry with the
config model that its `type:` names in the plugin registry (router/core/registry.py), so a backend
type installed as a package needs no edit here. An unknown type is an error at
`backends.NAME.type` with a did-you-mean suggestion.
"""

from __future__ import annotations

import difflib
import hashlib
import os
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from router.config import yamlpos
from router.config.sections import StateConfig, TracingConfig
from router.core.backend_config import (  # re-exported: the backend fields every config has
    MAX_EJECTION_S,
    BackendCommon,
    Feature,
    HttpBackendCommon,
    PerformanceConfig,
    PriceConfig,
    StrictModel,
    TimeoutsConfig,
    Trust,
)
from router.core.errors import ConfigError
from router.core.registry import Registry, default_registry

__all__ = [
    "BackendCommon",
    "Config",
    "ConfigErrors",
    "Feature",
    "HttpBackendCommon",
    "LoadedConfig",
    "PerformanceConfig",
    "PriceConfig",
    "StateConfig",
    "TimeoutsConfig",
    "TracingConfig",
    "Trust",
    "load_config",
    "parse_config",
]

DEFAULT_CONFIG_NAME = "default_config.yaml"
MAX_EXPANDED_NODES = 100_000  # YAML values after alias expansion: no "billion laughs" config


class PolicyConfig(StrictModel):
    type: str = Field(min_length=1, description="a registered policy type, kebab-case")
    parameters: dict[str, Any] = Field(default_factory=dict)


MAX_WEIGHT = 1000.0


class ProfilePolicy(StrictModel):
    policy: str
    weight: float = Field(
        1.0,
        ge=0,
        le=MAX_WEIGHT,
        allow_inf_nan=False,
        description="how much the policy's score in [0, 1] counts in the total",
    )


class ProfileConfig(StrictModel):
    policies: list[ProfilePolicy] = Field(default_factory=list)


class TlsConfig(StrictModel):
    """TLS for both services; with `client_ca_file`, clients must present a certificate (mTLS)."""

    cert_file: str = Field(min_length=1, description="PEM server certificate (chain)")
    key_file: str = Field(min_length=1, description="PEM private key of the certificate")
    client_ca_file: str | None = Field(
        None, description="PEM CA bundle: require client certificates signed by it"
    )


class ReloadAllowConfig(StrictModel):
    """What a config sent through the admin API may add beyond the running config's secrets."""

    env: list[str] = Field(
        default_factory=list, description="environment variables a sent config may newly read"
    )
    hosts: list[str] = Field(
        default_factory=list, description="host names a sent config may send a secret to"
    )


class ServerConfig(StrictModel):
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
    http_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="the HTTP faces' port (OpenAI, Anthropic, /metrics); unset: off",
    )
    http_host: str | None = Field(
        None, min_length=1, description="the HTTP bind address; unset: host"
    )
    http_max_connections: int = Field(
        1024, ge=1, le=1_000_000, description="open HTTP connections at most (503 beyond)"
    )
    http_keep_alive_s: float = Field(5.0, gt=0, le=3600, description="idle keep-alive time")
    http_body_timeout_s: float = Field(
        30.0, gt=0, le=3600, description="time to receive a request body, at most"
    )


class SchedulerConfig(StrictModel):
    batch_window_ms: float = Field(
        0.0, ge=0, le=1000, description="wait this long to gather a batch (0: no timer)"
    )
    max_batch: int = Field(256, ge=1, le=4096, description="requests placed jointly at most")
    solver_time_limit_ms: float = Field(50.0, gt=0, le=10_000, description="CP-SAT time limit")


class PredictorsConfig(StrictModel):
    """Learned latency and length predictors (docs/predictors.md); reloaded with the config."""

    path: str | None = Field(
        None,
        min_length=1,
        max_length=4096,
        description="folder written by `tokenrouter train`; unset: analytic estimates only",
    )
    refresh_minutes: float = Field(
        0,
        ge=0,
        le=10_080,
        description="retrain from server.request_log this often (a separate process), keeping "
        "the new models only if they beat the current ones; 0: never",
    )


class HealthConfig(StrictModel):
    probe_interval_s: float = Field(10.0, gt=0, description="how often backends are probed")
    probe_timeout_s: float = Field(5.0, gt=0)
    unhealthy_after: int = Field(3, ge=1, description="consecutive failed probes")
    eject_after: int = Field(5, ge=1, description="consecutive failed requests")
    base_ejection_s: float = Field(30.0, gt=0, le=MAX_EJECTION_S)
    max_ejection_s: float = Field(
        300.0, gt=0, le=MAX_EJECTION_S, description="longest ejection or cool-down"
    )


class FallbackConfig(StrictModel):
    max_attempts: int = Field(3, ge=1, le=10, description="backends tried per request, at most")


class DefaultsConfig(StrictModel):
    profile: str = "default"
    max_tokens: int = Field(256, ge=1)
    temperature: float = Field(0.7, ge=0, le=2)


class LimitsConfig(StrictModel):
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


class Config(StrictModel):
    server: ServerConfig = ServerConfig()
    defaults: DefaultsConfig = DefaultsConfig()
    limits: LimitsConfig = LimitsConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    health: HealthConfig = HealthConfig()
    fallback: FallbackConfig = FallbackConfig()
    tracing: TracingConfig = TracingConfig()
    state: StateConfig = StateConfig()
    predictors: PredictorsConfig = PredictorsConfig()
    backends: dict[str, BackendCommon] = Field(
        min_length=1, description="each entry validated by the model its `type` names"
    )
    policies: dict[str, PolicyConfig] = Field(default_factory=dict)
    profiles: dict[str, ProfileConfig] = Field(default_factory=lambda: {"default": ProfileConfig()})

    @field_validator("backends", mode="wrap")
    @classmethod
    def _resolve_backend_types(
        cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> Any:
        """Validates each backend entry with the config model its `type` names in the registry
        (the validation context's `registry`, else the default one)."""
        if not isinstance(value, dict):
            return handler(value)
        context = info.context if isinstance(info.context, dict) else {}
        registry = context.get("registry") or default_registry()
        resolved: dict[Any, Any] = {}
        errors: list[InitErrorDetails] = []
        for name, entry in value.items():
            if not isinstance(entry, dict) or not isinstance(entry.get("type"), str):
                resolved[name] = entry  # the handler reports what is wrong with it
                continue
            try:
                model = registry.backend_config(entry["type"])
            except KeyError as exc:
                errors.append(_error((name, "type"), "unknown_backend_type", exc.args[0], entry))
                continue
            try:
                resolved[name] = model.model_validate(entry, context=info.context)
            except ValidationError as exc:
                for err in exc.errors():
                    errors.append(
                        _error((name, *err["loc"]), err["type"], err["msg"], err["input"])
                    )
        if errors:
            raise ValidationError.from_exception_data("backends", errors)
        return handler(resolved)

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


def _error(loc: tuple[Any, ...], kind: str, message: str, value: Any) -> InitErrorDetails:
    """A schema error at `loc` (below `backends`), keeping its kind and message."""
    return InitErrorDetails(
        type=PydanticCustomError(kind, "{message}", {"message": message}), loc=loc, input=value
    )


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
    return resources.files("router.config").joinpath(DEFAULT_CONFIG_NAME).read_text()


def load_config(
    path: str | os.PathLike[str] | None = None, registry: Registry | None = None
) -> LoadedConfig:
    """Loads and validates a config file, or the embedded default when `path` is None."""
    if path is None:
        return parse_config(default_config_text(), f"<embedded {DEFAULT_CONFIG_NAME}>", registry)
    return parse_config(read_config_file(path), str(path), registry)


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


def parse_config(text: str, source: str, registry: Registry | None = None) -> LoadedConfig:
    """Validates config text; errors name `source`, the YAML path, line, column and reason.

    Backend types resolve through `registry` (default: the built-ins and installed plugins)."""
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
        config = Config.model_validate(data, context={"registry": registry})
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
    reason = reason.removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        reason = "unknown field"
    path = ".".join(str(p) for p in loc)
    line, col = yamlpos.locate(root, loc)
    return ConfigError(source, path, reason, line, col)
