"""Everything one router process keeps in Redis when `state.backend` is `redis`.

- budgets and rate limits: the handle's stores (router/state/shared_budgets.py);
- fleet capacity: in-flight slots per backend with a max_concurrency (router/state/fleet.py);
- health: ejections and cool-downs (router/state/shared_health.py);
- the fleet's processes and their config versions, and reloads for all
  (router/state/processes.py).
The embedded default config keeps all of it in memory; nothing here runs then.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Callable
from typing import Any

import structlog

from router.config.sections import StateConfig
from router.core.handle import PluginHandle
from router.core.token_window import TokenWindow
from router.state.fleet import FleetSlots
from router.state.link import StateDown, StateLink
from router.state.processes import Processes, Reload
from router.state.shared_budgets import SharedBudgetStore, settle_all
from router.state.shared_health import SharedHealth

log = structlog.get_logger("tokenrouter")


def process_id() -> str:
    """This process's name in the fleet: host, pid and a random part (pids repeat)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class SharedState:
    """One process's shared state; see the module docstring. `start()` once the loop runs."""

    def __init__(self, config: StateConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.link = StateLink(config)
        self.process = process_id()
        modes = config.on_unavailable
        self.budgets = SharedBudgetStore(self.link, "budgets", modes.budgets, clock)
        self.rates = SharedBudgetStore(self.link, "rate_limits", modes.rate_limits, clock)
        self.capacity = SharedBudgetStore(self.link, "capacity", modes.capacity, clock)
        self.slots = FleetSlots(self.capacity)
        self.health = SharedHealth(self.link, self.process)
        self.processes = Processes(self.link, self.process)

    @property
    def stores(self) -> list[SharedBudgetStore]:
        return [self.budgets, self.rates, self.capacity]

    def handle(self, token_window: TokenWindow) -> PluginHandle:
        """The plugin handle whose budget and rate stores are shared."""
        return PluginHandle(
            budget_store=self.budgets, rate_store=self.rates, token_window=token_window
        )

    def attach(self, runtime: Callable[[], Any], reload: Reload) -> None:
        """Reports `runtime()`'s config version to the fleet; applies reloads others announce."""
        self.processes.attach(
            lambda: (runtime().loaded.version, runtime().loaded.source, runtime().loaded_at),
            reload,
        )

    async def start(self) -> None:
        """Checks Redis once (a failure is logged: the fail modes apply) and starts the loop."""
        try:
            await self.link.call(self.link.redis.ping)
            log.info("shared state", redis=self.link.where, process=self.process)
        except StateDown as exc:
            log.warning("shared state unreachable at start", error=str(exc))
        self.link.start()

    async def aclose(self, timeout_s: float = 2.0) -> None:
        """Lets finishes reach Redis (within `timeout_s`), leaves the fleet, closes the link."""
        await settle_all(self.stores, timeout_s)
        await self.processes.leave()
        await self.link.aclose()
