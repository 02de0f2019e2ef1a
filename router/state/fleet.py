"""Fleet-wide in-flight slots: a backend's `max_concurrency` holds for every router together.

Each generation admitted to a backend with a `max_concurrency` takes one slot in a shared
account (router/state/shared_budgets.py: held locally, confirmed in Redis before the first token,
a lease renewed while it runs), and gives it back when it ends; a router that dies gives its
slots back when their leases lapse. A slot account has no window (it never resets) and settles
at zero: only running generations count. The scheduler's view of the backend counts the fleet's
generations (`in_flight`), re-read every `state.sync_interval_s` (the store syncs the accounts
read) and after each slot change here, so the capacity policy sees the shared load.
"""

from __future__ import annotations

from collections.abc import Mapping

from router.core.backend import Backend
from router.core.budgets import Account, Holds
from router.core.errors import ResourceExhausted
from router.core.types import Usage
from router.state.shared_budgets import SharedBudgetStore

FOREVER_S = float(2**31)  # one window for the store's lifetime: slots never reset


def _nothing(usage: Usage) -> float:
    return 0.0


def limit_of(backend: Backend) -> int:
    """The backend's configured `max_concurrency` (0: none, not shared)."""
    return int(getattr(backend.config, "max_concurrency", 0) or 0)


class FleetSlots:
    """Slots per backend across the fleet; see the module docstring."""

    def __init__(self, store: SharedBudgetStore) -> None:
        self._store = store  # syncs the slot accounts the views read
        self._limits: dict[str, int] = {}

    def track(self, backends: Mapping[str, Backend]) -> None:
        """Counts the backends of a config version that have a `max_concurrency`."""
        for name, backend in backends.items():
            if limit := limit_of(backend):
                self._limits[name] = limit

    @staticmethod
    def _key(name: str) -> str:
        return f"slots:{name}"

    def in_flight(self, name: str) -> int | None:
        """Generations running on `name` across the fleet, as last seen; None: not shared."""
        limit = self._limits.get(name)
        if not limit:
            return None
        return round(limit - self._store.available(self._key(name), limit, FOREVER_S))

    def reserve(self, name: str) -> Holds | None:
        """One slot on `name`, or RESOURCE_EXHAUSTED when the fleet's are all in use."""
        limit = self._limits.get(name)
        if not limit:
            return None
        label = f"backend {name}: max_concurrency {limit} across routers"
        hold = self._store.reserve(self._key(name), 1.0, limit, FOREVER_S)
        if hold is None:
            raise ResourceExhausted(f"{label}: all slots in use")
        return Holds(self._store, [Account(hold, label, _nothing)])
