"""Maps kebab-case policy type names to factories; refuses duplicates."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from router.framework import Filter, Scorer

Policy = Filter | Scorer
PolicyFactory = Callable[[str, Mapping[str, Any]], Policy]


class Registry:
    """A name -> factory table; a factory takes (policy name, parameters) and validates them."""

    def __init__(self) -> None:
        self._factories: dict[str, PolicyFactory] = {}

    def register(self, type_name: str, factory: PolicyFactory) -> None:
        if type_name in self._factories:
            raise ValueError(f"policy type {type_name!r} is already registered")
        self._factories[type_name] = factory

    def types(self) -> list[str]:
        return sorted(self._factories)

    def create(self, type_name: str, name: str, parameters: Mapping[str, Any]) -> Policy:
        """Builds a policy; raises KeyError for an unknown type, ValueError for bad parameters."""
        try:
            factory = self._factories[type_name]
        except KeyError:
            known = ", ".join(self.types())
            raise KeyError(f"unknown policy type {type_name!r} (known: {known})") from None
        return factory(name, parameters)


def default_registry() -> Registry:
    """A registry holding the built-in policies."""
    from policies import capability

    registry = Registry()
    registry.register("capability", capability.create)
    return registry
