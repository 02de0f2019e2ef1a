"""Maps kebab-case policy type names to factories; refuses duplicates.

Built-in policies are registered by `default_registry()`. Policies from other packages register
through the entry-point group `tokenrouter.policies`: the entry point's name is the type name and
its object a factory `create(name, parameters, handle) -> policy` (or `create(name, parameters)`
for a policy that needs no shared service; the form is read once, at registration), e.g. in the
package's pyproject.toml:

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
from router.handle import PluginHandle

Policy = Filter | Scorer | Constrainer | Preparer | Reserver
PolicyFactory = (
    Callable[[str, Mapping[str, Any], PluginHandle], Policy]
    | Callable[[str, Mapping[str, Any]], Policy]
)
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


_LEGACY_SERVICES = frozenset({"store", "window", "clock"})  # the keyword services of old


class Registry:
    """A name -> factory table; a factory takes (policy name, parameters[, handle]) and
    validates the parameters."""

    def __init__(self) -> None:
        self._factories: dict[str, PolicyFactory] = {}
        self._takes_handle: dict[str, bool] = {}

    def register(self, type_name: str, factory: PolicyFactory) -> None:
        """Adds a policy type; ValueError for a bad or taken name or a factory of neither form."""
        if not _KEBAB.fullmatch(type_name):
            raise ValueError(f"policy type {type_name!r} is not kebab-case")
        if type_name in self._factories:
            raise ValueError(f"policy type {type_name!r} is already registered")
        takes_handle = _takes_handle(type_name, factory)
        self._factories[type_name] = factory
        self._takes_handle[type_name] = takes_handle

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
        handle: PluginHandle | None = None,
    ) -> Policy:
        """Builds a policy; raises KeyError for an unknown type, ValueError for bad parameters.

        `handle` holds the shared services (budget store, token window, clock) that outlive
        config reloads; without one, the policy gets fresh ones (for validation and tests).
        """
        try:
            factory = self._factories[type_name]
        except KeyError:
            raise KeyError(f"unknown policy type {type_name!r}{self._suggest(type_name)}") from None
        if self._takes_handle[type_name]:
            policy = factory(name, parameters, handle or PluginHandle())  # type: ignore[call-arg]
        else:
            policy = factory(name, parameters)  # type: ignore[call-arg]
        if not isinstance(policy, Filter | Scorer | Constrainer | Preparer | Reserver):
            raise ValueError(f"policy type {type_name!r} implements no policy contract")
        return policy


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
            "handle.budget_store, handle.token_window or handle.clock"
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
