"""The router's synchronous BudgetStore in front of Redis: local first, confirmed before the
first token.

Admission runs synchronously with the placement (router/runtime/admission.py), so `reserve`
here checks the account's last known figure and holds the amount locally; the request then
awaits `confirm` before it streams, which reserves the same amount in Redis atomically
(router/state/redis_budgets.py). Redis refusing (other routers spent it) makes the request's
admission fail like any refusal: RESOURCE_EXHAUSTED naming the account, or another backend.

Settle and release answer at once and finish in Redis in the background; a finish Redis did
not acknowledge is retried by the link's loop until it is (finishes are idempotent per hold, so
nothing is charged twice). Running holds are renewed every lease/3: a router that dies leaks
nothing for longer than the lease.

While Redis is unreachable (router/state/link.py), per kind of state (`state.on_unavailable`):
- closed: `confirm` raises StateUnavailable (UNAVAILABLE, with Retry-After), nothing is held;
- open: the hold stays local and counts against the account's last known figure; what it spends
  is journalled and charged to Redis once it is back (once per entry). Each process can thus
  spend at most what was left when Redis went away: the overspend is bounded by (routers - 1)
  x that, counted in `unconfirmed` and logged.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from router.config.sections import FailMode
from router.core.budgets import Hold, MemoryBudgetStore
from router.core.errors import StateUnavailable
from router.state.link import StateDown, StateLink
from router.state.redis_budgets import Lease, RedisBudgetStore

log = structlog.get_logger("tokenrouter")
SEEN_S = 60.0  # an account not read for this long is no longer synced
MAX_SYNCED = 1000  # accounts re-read per sync, at most (the most recently read)


@dataclass(slots=True)
class _Open:
    """A hold this process handed out and has not finished."""

    hold: Hold
    limit: float
    lease: Lease  # its identity in Redis
    confirmed: bool = False  # held in Redis (else only here)
    local: bool = False  # confirmed locally while Redis was down (fail open)


class SharedBudgetStore:
    """A BudgetStore shared through Redis; see the module docstring. `kind` names the state in
    messages and metrics (budgets, rate_limits, capacity)."""

    def __init__(
        self,
        link: StateLink,
        kind: str,
        mode: FailMode,
        clock: Callable[[], float],
    ) -> None:
        self.kind = kind
        self.mode = mode
        self._link = link
        self._redis = RedisBudgetStore(
            link.redis, prefix=f"{link.prefix}{kind}:", lease_s=link.config.lease_s, clock=clock
        )
        self._local = MemoryBudgetStore(clock)  # holds not yet in Redis, spend not yet charged
        self._open: dict[int, _Open] = {}
        self._unacked: dict[str, tuple[Lease, float]] = {}  # finishes to retry: id -> (lease, cost)
        self._journal: dict[str, tuple[Lease, float]] = {}  # fail-open spend to charge
        self.unconfirmed = 0  # holds admitted on local figures while Redis was down
        self.unconfirmed_amount = 0.0  # what they spent
        # Accounts read lately -> (limit, when): re-read from Redis every sync, so a figure
        # that refuses locally (other routers' holds, since ended or expired) cannot go stale.
        self._seen: dict[tuple[str, float], float] = {}
        link.every(link.config.lease_s / 3, self.maintain)
        link.every(link.config.sync_interval_s, self.sync)

    # The synchronous BudgetStore interface

    def available(self, key: str, limit: float, window_s: float) -> float:
        self._seen[(key, window_s)] = time.monotonic()
        local_used = limit - self._local.available(key, limit, window_s)
        return self._redis.available(key, limit, window_s) - local_used

    def reserve(self, key: str, amount: float, limit: float, window_s: float) -> Hold | None:
        if amount > self.available(key, limit, window_s) + 1e-9:
            return None
        hold = self._local.reserve(key, amount, math.inf, window_s)
        assert hold is not None  # an infinite limit always fits
        lease = self._redis.lease(key, amount, window_s)
        self._open[hold.id] = _Open(hold, limit, lease)
        return hold

    def settle(self, hold: Hold, actual: float) -> None:
        if (o := self._open.pop(hold.id, None)) is None:
            return
        if o.confirmed:
            self._redis.note(o.lease.key, o.lease.window, actual - o.lease.amount)
            self._finish(o.lease, max(0.0, actual))
            return
        # Local only (fail open, or never confirmed): spent here; charged to Redis once it
        # answers, under its own id (the lease's is marked done, so a late reserve is refused,
        # and a reserve that reached Redis although its reply did not is dropped).
        self._local.settle(hold, max(0.0, actual))
        if o.local:
            self.unconfirmed_amount += max(0.0, actual)
        self._finish(o.lease, -1.0)
        charge = o.lease.id + ":charge"
        self._journal[charge] = (o.lease, max(0.0, actual))
        self._link.spawn(self._charge(charge))

    def release(self, hold: Hold) -> None:
        if (o := self._open.pop(hold.id, None)) is None:
            return
        self._local.release(hold)
        if o.confirmed:
            self._redis.note(o.lease.key, o.lease.window, -o.lease.amount)
        # A reserve may be in flight, done, or have reached Redis although its reply did not:
        # marking the lease done settles each case.
        self._finish(o.lease, -1.0)

    # Confirmation before the first token

    async def confirm(self, hold: Hold) -> bool:
        """Holds `hold` in Redis too; False when Redis refuses it (the local hold is dropped).
        Raises StateUnavailable when Redis is down and this kind fails closed."""
        o = self._open.get(hold.id)
        if o is None or o.confirmed or o.local:
            return True
        try:
            lease = await self._link.call(
                lambda: self._redis.reserve(
                    o.lease.key, o.lease.amount, o.limit, o.lease.window_s, o.lease
                )
            )
        except StateDown as exc:
            if self.mode is FailMode.CLOSED:
                self.release(hold)
                raise StateUnavailable(
                    f"{exc}; {self.kind} fail closed", self._link.config.retry_s
                ) from None
            o.local = True
            self.unconfirmed += 1
            return True
        except BaseException:  # cancelled mid-call: whether Redis took it or not, give it back
            self.release(hold)
            raise
        if hold.id not in self._open:  # settled or released meanwhile: that marked it done
            return True
        if lease is None:
            self._open.pop(hold.id, None)
            self._local.release(hold)
            return False
        o.confirmed = True
        self._local.release(hold)  # Redis' figure (cached with the reply) now includes it
        return True

    # Background: finishes, charges, renewals

    def _finish(self, lease: Lease, actual: float) -> None:
        self._unacked[lease.id] = (lease, actual)
        self._link.spawn(self._send_finish(lease.id))

    async def _send_finish(self, id: str) -> None:
        entry = self._unacked.get(id)
        if entry is None:
            return
        lease, actual = entry
        try:
            if actual < 0:
                await self._link.call(lambda: self._redis.release(lease))
            else:
                await self._link.call(lambda: self._redis.settle(lease, actual))
        except StateDown:
            return  # kept in _unacked: maintain() retries it
        self._unacked.pop(id, None)

    async def _charge(self, id: str) -> None:
        entry = self._journal.get(id)
        if entry is None:
            return
        lease, amount = entry
        try:
            await self._link.call(
                lambda: self._redis.charge(lease.key, lease.window, lease.window_s, amount, id)
            )
        except StateDown:
            return
        if self._journal.pop(id, None) is not None:  # Redis' figure (cached) now has it
            self._local.unspend(lease.key, lease.window, amount)

    async def maintain(self) -> None:
        """Renews running holds, retries unacknowledged finishes and journalled charges."""
        leases = [o.lease for o in self._open.values() if o.confirmed]
        if leases:
            await self._link.call(lambda: self._redis.renew(leases))
        for id in list(self._unacked):
            await self._send_finish(id)
        for id in list(self._journal):
            await self._charge(id)

    async def refresh(self, key: str, limit: float, window_s: float) -> None:
        """Reads an account's figure from Redis (for views between this process's own calls)."""
        await self._link.call(lambda: self._redis.refresh(key, limit, window_s))

    async def sync(self) -> None:
        """Re-reads the accounts used in the last SEEN_S (the MAX_SYNCED latest), in one trip."""
        cutoff = time.monotonic() - SEEN_S
        self._seen = {a: t for a, t in self._seen.items() if t >= cutoff}
        recent = sorted(self._seen, key=self._seen.__getitem__, reverse=True)[:MAX_SYNCED]
        if recent:
            await self._link.call(lambda: self._redis.refresh_many(recent))

    def unsent(self) -> int:
        """Finishes and fail-open charges Redis has not acknowledged yet."""
        return len(self._unacked) + len(self._journal)

    def pending(self) -> int:
        """Holds open here, finishes and charges not yet acknowledged (for tests and drains)."""
        return len(self._open) + len(self._unacked) + len(self._journal)


async def settle_all(stores: list[SharedBudgetStore], timeout_s: float) -> None:
    """Gives background finishes up to `timeout_s` to reach Redis (at shutdown)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while any(s._unacked or s._journal for s in stores):
        if asyncio.get_running_loop().time() > deadline:
            return
        for store in stores:
            await store.maintain()
        await asyncio.sleep(0.05)
