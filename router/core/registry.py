"""One registry for the router's plugins: policy types and backend types, by kebab-case name.

The built-in tables below are the only place in the project that names specific plugins.
Plugins from other packages register through entry points, whose names are the type names;
a name already taken (a built-in's or another package's) stops the router from starting:

    [project.entry-points."tokenrouter.policies"]
    prefer-region = "my_policies.region:create"

    [project.entry-points."tokenrouter.backends"]
    echo = "my_backends.echo:EchoBackend"

A policy entry point names a factory `create(name, parameters, handle) -> policy` (or
`create(name, parameters)` for a policy that needs no shared service; the form is read once, at
registration). A backend entry point names a `router.core.backend.Backend` subclass whose
`config_model` (a `BackendCommon` subclass) validates the backend's config entry. Backend
modules are imported on first use, so unused backend types cost nothing.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import re
from collections.abc import Callable, Mapping
from importlib import metadata
from typing import Any

from router.core.backend import Backend
from router.core.backend_config import BackendCommon
from router.core.framework import Constrainer, Filter, Preparer, Reserver, Scorer
from router.core.guard import PRIVACY_GUARD
from router.core.handle import PluginHandle

Policy = Filter | Scorer | Constrainer | Preparer | Reserver
PolicyFactory = (
    Callable[[str, Mapping[str, Any], PluginHandle], Policy]
    | Callable[[str, Mapping[str, Any]], Policy]
)
BackendLoader = Callable[[], type[Backend]]
ENTRY_POINT_GROUP = "tokenrouter.policies"
BACKEND_ENTRY_POINT_GROUP = "tokenrouter.backends"
_KEBAB = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")

BUILTIN: dict[str, str] = {
    "capability": "policies.capability:create",
    "privacy": "policies.privacy:create",
    "cost": "policies.cost:create",
    "latency": "policies.latency:create",
    "capacity": "policies.capacity:create",
    "budget": "policies.budget:create",
    "rate-limit": "policies.rate_limit:create",
    "headroom": "policies.headroom:create",
}

# The policy type that guards every request when the config has no guard of its own (content
# detection with the built-in detectors, and the default trust per privacy class).
DEFAULT_GUARD = "privacy"

BUILTIN_BACKENDS: dict[str, str] = {
    "llamacpp": "backends.llamacpp:LlamaCppBackend",
    "scripted": "backends.scripted:ScriptedBackend",
    "openai": "backends.openai_compat:OpenAICompatBackend",
    "anthropic": "backends.anthropic:AnthropicBackend",
}

_LEGACY_SERVICES = frozenset({"store", "window", "clock"})  # the keyword services of old


class Registry:
    """Type name -> policy factory, and type name -> backend class (loaded on first use)."""

    def __init__(self) -> None:
        self._factories: dict[str, PolicyFactory] = {}
        self._takes_handle: dict[str, bool] = {}
        self._backend_loaders: dict[str, BackendLoader] = {}
        self._backends: dict[str, type[Backend]] = {}

    # Policies.

    def register(self, type_name: str, factory: PolicyFactory) -> None:
        """Adds a policy type; ValueError for a bad or taken name or a factory of neither form."""
        _check_name("policy", type_name, self._factories)
        takes_handle = _takes_handle(type_name, factory)
        self._factories[type_name] = factory
        self._takes_handle[type_name] = takes_handle

    def types(self) -> list[str]:
        """The registered policy types."""
        return sorted(self._factories)

    def create(
        self,
        type_name: str,
        name: str,
        parameters: Mapping[str, Any],
        handle: PluginHandle | None = None,
    ) -> Policy:
        """Builds a policy; raises KeyError for an unknown type, ValueError for bad parameters.

        `handle` holds the shared services (budget store, token window, clock) that outlive
        config reloads; without one, the policy gets fresh ones (for validation and tests).
        """
        try:
            factory = self._factories[type_name]
        except KeyError:
            hint = _suggest(type_name, self.types())
            raise KeyError(f"unknown policy type {type_name!r}{hint}") from None
        if self._takes_handle[type_name]:
            policy = factory(name, parameters, handle or PluginHandle())  # type: ignore[call-arg]
        else:
            policy = factory(name, parameters)  # type: ignore[call-arg]
        if not isinstance(policy, Filter | Scorer | Constrainer | Preparer | Reserver):
            raise ValueError(f"policy type {type_name!r} implements no policy contract")
        return policy

    def default_guard(self, handle: PluginHandle | None = None) -> Policy:
        """The built-in privacy policy with its defaults, for configs that configure no guard."""
        return self.create(DEFAULT_GUARD, PRIVACY_GUARD, {}, handle)

    # Backends.

    def register_backend(self, type_name: str, backend: type[Backend] | BackendLoader) -> None:
        """Adds a backend type: a Backend subclass, or a function that imports and returns one
        (called on first use); ValueError for a bad or taken name."""
        _check_name("backend", type_name, self._backend_loaders)
        if isinstance(backend, type):
            self._backends[type_name] = _check_backend(type_name, backend)
            self._backend_loaders[type_name] = _const(backend)
        else:
            self._backend_loaders[type_name] = backend

    def backend_types(self) -> list[str]:
        """The registered backend types."""
        return sorted(self._backend_loaders)

    def backend_class(self, type_name: str) -> type[Backend]:
        """The Backend subclass of a type; KeyError (with a suggestion) for an unknown type."""
        cls = self._backends.get(type_name)
        if cls is None:
            try:
                loader = self._backend_loaders[type_name]
            except KeyError:
                hint = _suggest(type_name, self.backend_types())
                raise KeyError(f"unknown backend type {type_name!r}{hint}") from None
            cls = self._backends[type_name] = _check_backend(type_name, loader())
        return cls

    def backend_config(self, type_name: str) -> type[BackendCommon]:
        """The config model that validates a backend entry of this type."""
        return self.backend_class(type_name).config_model

    def create_backend(self, name: str, config: BackendCommon) -> Backend:
        """Builds the backend for a validated config entry, by its `type`."""
        return self.backend_class(config.type)(name, config)


def _check_name(kind: str, type_name: str, taken: Mapping[str, object]) -> None:
    if not _KEBAB.fullmatch(type_name):
        raise ValueError(f"{kind} type {type_name!r} is not kebab-case")
    if type_name in taken:
        raise ValueError(f"{kind} type {type_name!r} is already registered")


def _suggest(type_name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(type_name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{hint} (known: {', '.join(known)})"


def _const(cls: type[Backend]) -> BackendLoader:
    return lambda: cls


def _check_backend(type_name: str, cls: object) -> type[Backend]:
    """`cls` is a Backend subclass with a BackendCommon config model, or ValueError."""
    model = getattr(cls, "config_model", None)
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise ValueError(
            f"backend type {type_name!r}: {cls!r} is not a router.core.backend.Backend"
        )
    if not (isinstance(model, type) and issubclass(model, BackendCommon)):
        raise ValueError(f"backend type {type_name!r}: its config_model is not a BackendCommon")
    return cls


def _takes_handle(type_name: str, factory: PolicyFactory) -> bool:
    """Whether `factory` is `create(name, parameters, handle)` rather than
    `create(name, parameters)`; ValueError when it is neither."""
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # a callable without a signature: the plain form
        return False
    third = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD][2:3]
    if third and third[0].name in _LEGACY_SERVICES:
        raise ValueError(
            f"policy type {type_name!r}: factory parameter {third[0].name!r} is a keyword service, "
            "which are gone: take a third parameter `handle: PluginHandle` and read "
            "handle.budget_store, handle.rate_store, handle.token_window or handle.clock"
        )
    for args, takes in (((None, None, None), True), ((None, None), False)):
        try:
            signature.bind(*args)
        except TypeError:
            continue
        return takes
    raise ValueError(
        f"policy type {type_name!r}: the factory must take (name, parameters) "
        "or (name, parameters, handle)"
    )


def _load(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def default_registry() -> Registry:
    """The built-in policies and backends plus every installed `tokenrouter.policies` and
    `tokenrouter.backends` entry point."""
    registry = Registry()
    for type_name, target in BUILTIN.items():
        registry.register(type_name, _load(target))
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        registry.register(ep.name, ep.load())
    for type_name, target in BUILTIN_BACKENDS.items():
        registry.register_backend(type_name, lambda target=target: _load(target))
    for ep in metadata.entry_points(group=BACKEND_ENTRY_POINT_GROUP):
        registry.register_backend(ep.name, ep.load)
    return registry
