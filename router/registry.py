"""Maps kebab-case policy type names to factories; refuses duplicates.

Built-in policies are registered by `default_registry()`. Policies from other packages register
through the entry-point group `tokenrouter.policies`: the entry point's name is the type name and
its object a factory `create(name, parameters) -> policy`, e.g. in the package's pyproject.toml:

    [project.entry-points."tokenrouter.policies"]
    prefer-region = "my_policies.region:create"
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import re
from collections.abc import Callable, Mapping
from importlib import metadata
from typing import Any

from router.framework import Constrainer, Filter, Preparer, Reserver, Scorer

Policy = Filter | Scorer | Constrainer | Preparer | Reserver
PolicyFactory = Callable[[str, Mapping[str, Any]], Policy]
ENTRY_POINT_GROUP = "tokenrouter.policies"
_KEBAB = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")

BUILTIN: dict[str, str] = {
    "capability": "policies.capability:create",
    "privacy": "policies.privacy:create",
    "cost": "policies.cost:create",
    "latency": "policies.latency:create",
    "capacity": "policies.capacity:create",
    "budget": "policies.budget:create",
    "headroom": "policies.headroom:create",
}


class Registry:
    """A name -> factory table; a factory takes (policy name, parameters) and validates them."""

    def __init__(self) -> None:
        self._factories: dict[str, PolicyFactory] = {}

    def register(self, type_name: str, factory: PolicyFactory) -> None:
        if not _KEBAB.fullmatch(type_name):
            raise ValueError(f"policy type {type_name!r} is not kebab-case")
        if type_name in self._factories:
            raise ValueError(f"policy type {type_name!r} is already registered")
        self._factories[type_name] = factory

    def types(self) -> list[str]:
        return sorted(self._factories)

    def _suggest(self, type_name: str) -> str:
        close = difflib.get_close_matches(type_name, self.types(), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"{hint} (known: {', '.join(self.types())})"

    def create(
        self,
        type_name: str,
        name: str,
        parameters: Mapping[str, Any],
        services: Mapping[str, Any] | None = None,
    ) -> Policy:
        """Builds a policy; raises KeyError for an unknown type, ValueError for bad parameters.

        `services` are shared objects (e.g. the budget store) handed to factories that take a
        keyword argument of that name, so policy state survives config reloads.
        """
        try:
            factory = self._factories[type_name]
        except KeyError:
            raise KeyError(f"unknown policy type {type_name!r}{self._suggest(type_name)}") from None
        accepted = _keywords(factory)
        extra = {k: v for k, v in (services or {}).items() if k in accepted}
        policy = factory(name, parameters, **extra)
        if not isinstance(policy, Filter | Scorer | Constrainer | Preparer | Reserver):
            raise ValueError(f"policy type {type_name!r} implements no policy contract")
        return policy


def _keywords(factory: PolicyFactory) -> set[str]:
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return set()
    return {n for n, p in list(params.items())[2:] if p.kind is not p.VAR_POSITIONAL}


def _load(target: str) -> PolicyFactory:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def default_registry() -> Registry:
    """The built-in policies plus every installed `tokenrouter.policies` entry point."""
    registry = Registry()
    for type_name, target in BUILTIN.items():
        registry.register(type_name, _load(target))
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        registry.register(ep.name, ep.load())
    return registry
