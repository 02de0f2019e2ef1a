"""Budget accounting behind an interface a shared store (e.g. Redis) can implement later.

Spend is tracked per key (a tenant's budget) in fixed windows aligned to the epoch (a 1 h budget
resets on the hour). Admission reserves an estimate; the end of the request settles the real
amount; a failure releases it. Reserve checks and holds in one step, so two requests cannot both
pass a check that only one of them fits.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from router.core.errors import ResourceExhausted
from router.core.types import Usage


@dataclass(frozen=True, slots=True)
class Hold:
    key: str
    window: int
    amount: float
    id: int


class BudgetStore(Protocol):
    def available(self, key: str, limit: float, window_s: float) -> float:
        """What is left of `limit` in the current window (spent and held amounts deducted)."""

    def reserve(self, key: str, amount: float, limit: float, window_s: float) -> Hold | None:
        """Holds `amount` if it fits what is left, else returns None."""

    def settle(self, hold: Hold, actual: float) -> None:
        """Replaces a hold by the real amount spent."""

    def release(self, hold: Hold) -> None:
        """Drops a hold; nothing was spent."""


class MemoryBudgetStore:
    """A process-local BudgetStore.

    Windows that have ended are swept away (at most once per `sweep_every_s`), so memory is
    bounded by the keys active in their current window, however many tenants come and go."""

    def __init__(self, clock: Callable[[], float] = time.time, sweep_every_s: float = 60.0) -> None:
        self._clock = clock
        self._spent: dict[tuple[str, int], float] = {}
        self._held: dict[tuple[str, int], dict[int, float]] = {}
        self._span: dict[str, float] = {}  # key -> its window length, for the sweep
        self._ids = itertools.count(1)
        self._sweep_every_s = sweep_every_s
        self._next_sweep = clock() + sweep_every_s

    def _window(self, window_s: float) -> int:
        return int(self._clock() // window_s)

    def _sweep(self) -> None:
        """Drops the spend of ended windows, and their held entries once no hold is open."""
        now = self._clock()
        if now < self._next_sweep:
            return
        self._next_sweep = now + self._sweep_every_s

        def ended(slot: tuple[str, int]) -> bool:
            span = self._span.get(slot[0])
            return span is None or slot[1] < int(now // span)

        for slot in [s for s in self._spent if ended(s)]:
            del self._spent[slot]
        for slot in [s for s, holds in self._held.items() if not holds and ended(s)]:
            del self._held[slot]
        live = {k for k, _ in self._spent} | {k for k, _ in self._held}
        self._span = {k: v for k, v in self._span.items() if k in live}

    def _used(self, slot: tuple[str, int]) -> float:
        return self._spent.get(slot, 0.0) + sum(self._held.get(slot, {}).values())

    def available(self, key: str, limit: float, window_s: float) -> float:
        return limit - self._used((key, self._window(window_s)))

    def reserve(self, key: str, amount: float, limit: float, window_s: float) -> Hold | None:
        self._sweep()
        self._span[key] = window_s
        slot = (key, self._window(window_s))
        if self._used(slot) + amount > limit + 1e-12:
            return None
        hold = Hold(key, slot[1], amount, next(self._ids))
        self._held.setdefault(slot, {})[hold.id] = amount
        return hold

    def settle(self, hold: Hold, actual: float) -> None:
        slot = (hold.key, hold.window)
        if self._held.get(slot, {}).pop(hold.id, None) is not None:
            self._spent[slot] = self._spent.get(slot, 0.0) + actual

    def release(self, hold: Hold) -> None:
        self._held.get((hold.key, hold.window), {}).pop(hold.id, None)

    def unspend(self, key: str, window: int, amount: float) -> None:
        """Takes back spend recorded here that is now accounted elsewhere (a shared store)."""
        slot = (key, window)
        if slot in self._spent:
            self._spent[slot] = max(0.0, self._spent[slot] - amount)

    def held_count(self) -> int:
        """Open holds (for tests and leak checks)."""
        return sum(len(h) for h in self._held.values())

    def tracked_count(self) -> int:
        """Windows with spend or hold entries kept in memory (for tests)."""
        return len(self._spent.keys() | self._held.keys())


@dataclass(frozen=True, slots=True)
class Account:
    """One hold of a request and what it means: `label` names the account in refusals,
    `charge` turns the request's usage into the amount it spent there."""

    hold: Hold
    label: str
    charge: Callable[[Usage], float]


class Holds:
    """A request's holds in one store, as a Reservation (router/core/framework.py).

    A shared store (router/state/shared_budgets.py) holds locally first; `confirm` holds in the
    store's shared truth too, before the first token, and refuses with RESOURCE_EXHAUSTED naming
    the account that other routers used up."""

    __slots__ = ("_accounts", "_store")

    def __init__(self, store: BudgetStore, accounts: Sequence[Account]) -> None:
        self._store = store
        self._accounts = list(accounts)

    @property
    def needs_confirm(self) -> bool:
        return hasattr(self._store, "confirm")

    async def confirm(self) -> None:
        confirm = getattr(self._store, "confirm", None)
        if confirm is None:
            return
        for account in self._accounts:
            if not await confirm(account.hold):
                raise ResourceExhausted(f"{account.label}: exhausted by requests on other routers")

    def settle(self, usage: Usage) -> None:
        for account in self._accounts:
            self._store.settle(account.hold, account.charge(usage))
        self._accounts = []

    def release(self) -> None:
        for account in self._accounts:
            self._store.release(account.hold)
        self._accounts = []
