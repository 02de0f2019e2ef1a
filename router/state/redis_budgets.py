"""A budget store in Redis, shared by every router process: reserve, settle, release, leases.

The same windowed accounting as router/core/budgets.py's MemoryBudgetStore (spend per key in
fixed windows aligned to the epoch; reserve checks and holds in one step), kept in Redis so that
many processes and pods see one truth. Every operation is one server-side Lua script, atomic:
two routers cannot both pass a check that only one of them fits.

Holds are leases: each carries an expiry (Redis' own clock, so router clocks do not matter),
renewed while its request runs (`renew`, every lease/3 by the owner). A router that dies stops
renewing; the next reserve on that account drops its expired holds, so a crash leaks nothing for
longer than the lease. Settle and release are idempotent per hold (a retry after a lost reply
charges once): each marks its hold done. Settling a hold whose lease expired still charges the
real cost — the tokens were spent.

Keys, per account and window (one Redis Cluster hash slot each): `{prefix}{key:window}:b` (hash:
spent, held), `:z` (sorted set: hold id -> lease expiry, ms), `:a` (hash: hold id -> amount),
`:d` (hash: hold ids settled or released). All expire a window after their window ends.

`available` answers from what the last operation on the key returned (the filter's view may lag
other routers: the reserve is what is exact); `refresh` reads it from Redis, dropping the
account's expired holds first.

router/state/shared_budgets.py puts this store behind the router's synchronous BudgetStore
interface, confirming each hold here before the request's first token.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis

EPSILON = 1e-9

_EXPIRE = """
local function expire_dead(b, z, a, now)
  local dead = redis.call('ZRANGEBYSCORE', z, '-inf', now)
  if #dead == 0 then return end
  local freed = 0
  for _, h in ipairs(dead) do
    freed = freed + tonumber(redis.call('HGET', a, h) or '0')
    redis.call('HDEL', a, h)
  end
  redis.call('ZREMRANGEBYSCORE', z, '-inf', now)
  if redis.call('ZCARD', z) == 0 then
    redis.call('HSET', b, 'held', 0)
  else
    redis.call('HINCRBYFLOAT', b, 'held', -freed)
  end
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function used(b)
  local v = redis.call('HMGET', b, 'spent', 'held')
  return tonumber(v[1] or '0') + math.max(0, tonumber(v[2] or '0'))
end
local function touch(ttl, ...)
  for _, k in ipairs({...}) do redis.call('PEXPIRE', k, ttl) end
end
"""

# KEYS: b z a d; ARGV: amount limit lease_ms id ttl_ms -> {admitted 0/1, used after}
RESERVE = (
    _EXPIRE
    + """
local b, z, a, d = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local amount, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local now = now_ms()
expire_dead(b, z, a, now)
local u = used(b)
if redis.call('HEXISTS', d, ARGV[4]) == 1 then return {0, tostring(u)} end
if u + amount > limit + 1e-9 then return {0, tostring(u)} end
redis.call('ZADD', z, now + tonumber(ARGV[3]), ARGV[4])
redis.call('HSET', a, ARGV[4], amount)
redis.call('HINCRBYFLOAT', b, 'held', amount)
touch(tonumber(ARGV[5]), b, z, a, d)
return {1, tostring(u + amount)}
"""
)

# KEYS: b z a d; ARGV: id actual ttl_ms (actual < 0: release) -> {applied 0/1, used after}
FINISH = (
    _EXPIRE
    + """
local b, z, a, d = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, actual = ARGV[1], tonumber(ARGV[2])
if redis.call('HSETNX', d, id, 1) == 0 then return {0, tostring(used(b))} end
local amount = redis.call('HGET', a, id)
if amount then
  redis.call('HDEL', a, id)
  redis.call('ZREM', z, id)
  if redis.call('ZCARD', z) == 0 then
    redis.call('HSET', b, 'held', 0)
  else
    redis.call('HINCRBYFLOAT', b, 'held', -tonumber(amount))
  end
end
if actual >= 0 then redis.call('HINCRBYFLOAT', b, 'spent', actual) end
expire_dead(b, z, a, now_ms())
touch(tonumber(ARGV[3]), b, z, a, d)
return {1, tostring(used(b))}
"""
)

# KEYS: b d; ARGV: id amount ttl_ms -> {applied 0/1, used after}: spend made without a hold
# (accounted locally while Redis was down), charged once per id
CHARGE = (
    _EXPIRE
    + """
local b, d = KEYS[1], KEYS[2]
if redis.call('HSETNX', d, ARGV[1], 1) == 1 then
  redis.call('HINCRBYFLOAT', b, 'spent', tonumber(ARGV[2]))
end
touch(tonumber(ARGV[3]), b, d)
return {1, tostring(used(b))}
"""
)

# KEYS: b z a -> used: drops expired holds, then reads the account
PEEK = (
    _EXPIRE
    + """
expire_dead(KEYS[1], KEYS[2], KEYS[3], now_ms())
return tostring(used(KEYS[1]))
"""
)

# KEYS: z; ARGV: lease_ms id... -> holds renewed (an expired or finished one is not revived)
RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expiry = now + tonumber(ARGV[1])
local n = 0
for i = 2, #ARGV do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) > now then
    redis.call('ZADD', KEYS[1], 'XX', expiry, ARGV[i])
    n = n + 1
  end
end
return n
"""


@dataclass(frozen=True, slots=True)
class Lease:
    """A hold in Redis: its account, window, amount and id (unique across routers)."""

    key: str
    window: int
    window_s: float
    amount: float
    id: str


class RedisBudgetStore:
    """Budget accounts in Redis (see the module docstring). `lease_s`: how long a hold lives
    without renewal; `clock`: picks the window (the lease uses Redis' clock)."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str = "tokenrouter:budget:",
        lease_s: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = client
        self._prefix = prefix
        self._lease_ms = int(lease_s * 1000)
        self._clock = clock
        self._reserve = client.register_script(RESERVE)
        self._finish = client.register_script(FINISH)
        self._renew = client.register_script(RENEW)
        self._charge = client.register_script(CHARGE)
        self._peek = client.register_script(PEEK)
        self._used: dict[tuple[str, int], float] = {}  # what Redis last said, per account

    @classmethod
    def from_url(cls, url: str, *, max_connections: int = 64, **kwargs: object) -> RedisBudgetStore:
        """A store on a bounded pool: past `max_connections` calls wait for a free one."""
        pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=max_connections)
        return cls(aioredis.Redis(connection_pool=pool), **kwargs)  # type: ignore[arg-type]

    async def aclose(self) -> None:
        await self._redis.aclose()
        await self._redis.connection_pool.disconnect()

    def _window(self, window_s: float) -> int:
        return int(self._clock() // window_s)

    def _keys(self, key: str, window: int) -> list[str]:
        base = f"{self._prefix}{{{key}:{window}}}"
        return [f"{base}:b", f"{base}:z", f"{base}:a", f"{base}:d"]

    def _ttl_ms(self, window: int, window_s: float) -> int:
        """Until a window after this one ends (and at least two leases)."""
        end = (window + 2) * window_s - self._clock()
        return max(int(end * 1000), 2 * self._lease_ms)

    def available(self, key: str, limit: float, window_s: float) -> float:
        """What is left, as of the last operation on this account here (see `refresh`)."""
        return limit - self._used.get((key, self._window(window_s)), 0.0)

    async def refresh(self, key: str, limit: float, window_s: float) -> float:
        """What is left, read from Redis (dropping expired holds first)."""
        await self.refresh_many([(key, window_s)])
        return self.available(key, limit, window_s)

    async def refresh_many(self, accounts: Sequence[tuple[str, float]]) -> None:
        """Reads many accounts (key, window_s) from Redis in one round trip."""
        slots = [(key, self._window(window_s)) for key, window_s in accounts]
        pipe = self._redis.pipeline(transaction=False)
        for key, window in slots:
            await self._peek(keys=self._keys(key, window)[:3], client=pipe)
        for slot, used in zip(slots, await pipe.execute(), strict=True):
            self._used[slot] = float(used)

    def lease(self, key: str, amount: float, window_s: float) -> Lease:
        """A new hold's identity (not yet in Redis): `reserve` it, or `release` it unreserved
        (a release first makes a later reserve of the same lease refuse)."""
        return Lease(key, self._window(window_s), window_s, amount, secrets.token_hex(8))

    def note(self, key: str, window: int, delta: float) -> None:
        """Adjusts the cached figure of an account by `delta` (an end Redis has not seen yet)."""
        if (key, window) in self._used:
            self._used[(key, window)] = max(0.0, self._used[(key, window)] + delta)

    async def reserve(
        self, key: str, amount: float, limit: float, window_s: float, lease: Lease | None = None
    ) -> Lease | None:
        """Holds `amount` if it fits what is left of `limit` in the window, else None."""
        lease = lease or self.lease(key, amount, window_s)
        window = lease.window
        ttl = self._ttl_ms(window, window_s)
        args = [repr(amount), repr(limit), self._lease_ms, lease.id, ttl]
        admitted, used = await self._reserve(keys=self._keys(key, window), args=args)
        self._used[(key, window)] = float(used)
        return lease if int(admitted) else None

    async def settle(self, lease: Lease, actual: float) -> bool:
        """Replaces the hold by the real amount spent; False if it was already finished."""
        return await self._end(lease, max(0.0, actual))

    async def release(self, lease: Lease) -> bool:
        """Drops the hold; nothing was spent. False if it was already finished."""
        return await self._end(lease, -1.0)

    async def _end(self, lease: Lease, actual: float) -> bool:
        keys = self._keys(lease.key, lease.window)
        ttl = self._ttl_ms(lease.window, lease.window_s)
        applied, used = await self._finish(keys=keys, args=[lease.id, repr(actual), ttl])
        self._used[(lease.key, lease.window)] = float(used)
        return bool(int(applied))

    async def charge(self, key: str, window: int, window_s: float, amount: float, id: str) -> None:
        """Adds spend made without a hold in Redis, once per `id` (a retry charges once)."""
        b, _, _, d = self._keys(key, window)
        ttl = self._ttl_ms(window, window_s)
        _, used = await self._charge(keys=[b, d], args=[id, repr(amount), ttl])
        self._used[(key, window)] = float(used)

    async def renew(self, leases: Sequence[Lease]) -> int:
        """Extends the leases of running holds by `lease_s` from now; returns how many were
        still held (an expired or finished hold is not revived)."""
        by_account: dict[tuple[str, int], list[str]] = {}
        for lease in leases:
            by_account.setdefault((lease.key, lease.window), []).append(lease.id)
        renewed = 0
        for (key, window), ids in by_account.items():
            z = self._keys(key, window)[1]
            renewed += int(await self._renew(keys=[z], args=[self._lease_ms, *ids]))
        return renewed
