"""The one typed object every plugin factory receives: the router's shared services.

A policy factory `create(name, parameters, handle)` reads what it needs from the handle instead
of building its own state, so the state outlives config reloads and a replay can swap in its
simulated clock. The live router makes one handle for its lifetime (`PluginHandle()`); a replay
makes one on its simulated clock (`PluginHandle.simulated(clock)`). New shared services (stores
kept in Redis, learned predictors) become new fields here, so a factory that does not use them
needs no change.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from router.core.budgets import BudgetStore, MemoryBudgetStore
from router.core.token_window import TokenWindow


@dataclass(frozen=True, slots=True)
class PluginHandle:
    """Shared services for plugins.

    clock: the time in seconds (the wall clock live, simulated time in a replay); budget windows
        are aligned to it.
    budget_store: spend and holds per budget key (`budget`).
    rate_store: requests and tokens per rate-limit window (`rate-limit`); the same kind of store,
        apart so that shared state can fail closed or open per kind (router/state/).
    token_window: tokens admitted per backend over the last minute (`capacity`).
    """

    clock: Callable[[], float] = time.time
    budget_store: BudgetStore = field(default_factory=MemoryBudgetStore)
    rate_store: BudgetStore = field(default_factory=MemoryBudgetStore)
    token_window: TokenWindow = field(default_factory=TokenWindow)

    @classmethod
    def simulated(cls, clock: Callable[[], float]) -> PluginHandle:
        """A fresh handle whose every service runs on `clock` (for replays and tests)."""
        return cls(
            clock=clock,
            budget_store=MemoryBudgetStore(clock),
            rate_store=MemoryBudgetStore(clock),
            token_window=TokenWindow(clock),
        )
