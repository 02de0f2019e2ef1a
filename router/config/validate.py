"""Full config validation, for `tokenrouter policy validate`, the admin API and reloads.

Beyond the schema it checks what only the whole file shows: unknown policy types (with a
suggestion), bad policy parameters, dangling references, weights on policies that do not
score, backends named in policy parameters that do not exist (the parameters each policy
declares in its `backend_parameters`), each backend config's own checks (its `problems()`, e.g.
llama.cpp: GGUF files that cannot be found), a predictors folder that cannot be served, and
profiles under which RESTRICTED requests could
never be served (under the guards, e.g. privacy, which bind every profile). Every problem names
the file, line, column, YAML path and reason.

Notes do not make a file invalid; they say what the file does not: that a guard (a privacy
policy) binds a profile that does not list it, or that with no privacy policy configured the
built-in detectors still scan every request.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

from router.config import ConfigErrors, LoadedConfig, parse_config, read_config_file
from router.core.errors import ConfigError
from router.core.framework import BackendView, Filter, RequestContext, Scorer
from router.core.guard import third_party_forbidden
from router.core.registry import Registry, default_registry
from router.core.types import ChatMessage, Privacy, Request
from router.placement.pipeline import Step, guards
from router.predict.model import load_for


@dataclass(frozen=True, slots=True)
class Problem:
    file: str
    line: int
    column: int
    path: str
    reason: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        return f"{where}: {self.path or '<root>'}: {self.reason}"

    @classmethod
    def of(cls, err: ConfigError) -> Problem:
        return cls(err.file, err.line, err.column, err.path, err.reason)


@dataclass
class Result:
    problems: list[Problem] = field(default_factory=list)
    notes: list[Problem] = field(default_factory=list)  # true, but not problems
    loaded: LoadedConfig | None = None
    version: str = ""


def validate_file(path: str | Path, registry: Registry | None = None) -> Result:
    try:
        text = read_config_file(path)
    except ConfigError as exc:
        return Result([Problem.of(exc)])
    return validate_text(text, str(path), registry)


def validate_text(text: str, source: str, registry: Registry | None = None) -> Result:
    """Validates a config text completely; `result.problems` is empty when it is valid."""
    registry = registry or default_registry()
    try:
        loaded = parse_config(text, source, registry)
    except ConfigErrors as exc:
        return Result([Problem.of(e) for e in exc.errors])
    except ConfigError as exc:
        return Result([Problem.of(exc)])
    result = Result(loaded=loaded, version=loaded.version)
    policies = {}
    for name, spec in loaded.config.policies.items():
        try:
            policies[name] = registry.create(spec.type, name, spec.parameters)
        except KeyError as exc:
            result.problems.append(
                Problem.of(loaded.error(("policies", name, "type"), exc.args[0]))
            )
        except ValueError as exc:
            result.problems.append(
                Problem.of(loaded.error(("policies", name, "parameters"), str(exc)))
            )
    _check_weights(loaded, policies, result)
    _check_backend_refs(loaded, policies, result)
    _check_backends(loaded, result)
    _check_predictors(loaded, result)
    if not result.problems:
        bound = guards(policies, registry.default_guard)
        _check_restricted(loaded, bound, result)
        _note_guards(loaded, bound, policies, result)
    return result


def _check_weights(loaded: LoadedConfig, policies: dict, result: Result) -> None:
    for pname, profile in loaded.config.profiles.items():
        for i, entry in enumerate(profile.policies):
            policy = policies.get(entry.policy)
            if policy is not None and entry.weight != 1.0 and not isinstance(policy, Scorer):
                path = ("profiles", pname, "policies", i, "weight")
                reason = f"policy {entry.policy!r} does not score, so a weight has no effect"
                result.problems.append(Problem.of(loaded.error(path, reason)))


def _check_backend_refs(loaded: LoadedConfig, policies: dict, result: Result) -> None:
    """Parameters that a policy declares as naming backends (its `backend_parameters`, e.g.
    capacity's `slots` and `tokens_per_minute` maps) name real backends."""
    backends = list(loaded.config.backends)
    for pname, spec in loaded.config.policies.items():
        declared = getattr(policies.get(pname), "backend_parameters", ())
        for key, value in spec.parameters.items():
            if key not in declared:
                continue
            if isinstance(value, str):  # one backend name
                named = [((), value)]
            elif isinstance(value, dict):  # a map keyed by backend name
                named = [((backend,), backend) for backend in value]
            elif isinstance(value, list):  # a list of backend names
                named = [((i,), backend) for i, backend in enumerate(value)]
            else:
                continue
            for where, backend in named:
                if backend not in backends:
                    close = difflib.get_close_matches(str(backend), backends, n=1)
                    hint = f"; did you mean {close[0]!r}?" if close else ""
                    path = ("policies", pname, "parameters", key, *where)
                    reason = f"unknown backend {backend!r}{hint}"
                    result.problems.append(Problem.of(loaded.error(path, reason)))


def _check_backends(loaded: LoadedConfig, result: Result) -> None:
    """Each backend config's own checks (its `problems()` hook; llama.cpp: the GGUF exists)."""
    for name, cfg in loaded.config.backends.items():
        for path, reason in cfg.problems():
            result.problems.append(Problem.of(loaded.error(("backends", name, *path), reason)))


def _check_predictors(loaded: LoadedConfig, result: Result) -> None:
    """The predictors folder loads: a card, and an ONNX model onnxruntime can serve; an online
    refresh has a folder to write and a request log to learn from."""
    try:
        load_for(loaded)
    except ConfigError as exc:
        result.problems.append(Problem.of(exc))
    config = loaded.config
    if config.predictors.refresh_minutes and not (
        config.predictors.path and config.server.request_log
    ):
        reason = "a refresh needs predictors.path and server.request_log"
        result.problems.append(Problem.of(loaded.error(("predictors", "refresh_minutes"), reason)))


def _check_restricted(loaded: LoadedConfig, bound: tuple[Step, ...], result: Result) -> None:
    """Under each profile, some backend must be allowed to serve a RESTRICTED request by the
    guards, which bind every profile."""
    request = Request(
        "validate", "validate", (ChatMessage("user", "x"),), 1, 0.0, privacy=Privacy.RESTRICTED
    )
    ctx = RequestContext(request, 1, Privacy.RESTRICTED)
    views = [BackendView(name, cfg) for name, cfg in loaded.config.backends.items()]
    guard_filters = [s.policy for s in bound if isinstance(s.policy, Filter)]
    allowed = [
        v
        for v in views
        if not third_party_forbidden(Privacy.RESTRICTED, v)
        and not any(f.filter(ctx, v) for f in guard_filters)
    ]
    if allowed:
        return
    trusts = ", ".join(f"{v.name} ({v.config.effective_trust})" for v in views)
    reason = (
        f"RESTRICTED requests can never be served under this profile: no backend is "
        f"trusted for them (backends: {trusts})"
    )
    for pname in loaded.config.profiles:
        result.problems.append(Problem.of(loaded.error(("profiles", pname), reason)))


def _note_guards(
    loaded: LoadedConfig, bound: tuple[Step, ...], policies: dict, result: Result
) -> None:
    """Notes each profile that a guard binds without the profile listing it, and a config
    without a privacy policy."""
    configured = [s for s in bound if policies.get(s.name) is s.policy]
    if not configured:
        reason = (
            "note: no privacy policy is configured; the built-in detectors still scan every "
            "request and a RESTRICTED request never reaches a third_party backend, but no other "
            "class rule applies"
        )
        result.notes.append(Problem.of(loaded.error(("policies",), reason)))
    for pname, profile in loaded.config.profiles.items():
        listed = {e.policy for e in profile.policies}
        for step in configured:
            if step.name not in listed:
                reason = (
                    f"note: does not list {step.name!r}, which applies anyway: it binds every "
                    f"profile (its detection and class rules run for every request)"
                )
                path = ("profiles", pname, "policies")
                result.notes.append(Problem.of(loaded.error(path, reason)))
