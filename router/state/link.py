"""One process's link to the shared state in Redis: the client, whether Redis is up, and the
background loop that keeps leases alive and catches up after an outage.

Every Redis call goes through `call()`: a call that fails (refused, reset, timed out) marks
Redis down for `retry_s`; while it is down, calls fail at once without I/O (no request waits on
a dead server), then the next call tries again. The stores decide, per kind of state, what a
failure means (router/state/shared_budgets.py: fail closed or open). `every()` registers work the
loop runs periodically (lease renewal, retries of finishes Redis missed, health and fleet sync);
it also pings a down Redis, so recovery needs no traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar
from urllib.parse import urlsplit

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from router.config.sections import StateConfig

log = structlog.get_logger("tokenrouter")
T = TypeVar("T")


class StateDown(Exception):
    """Redis did not answer (or is still counted as down); the message says since when."""


def redis_url(config: StateConfig) -> str:
    """The configured URL, from `url` or the environment variable `url_env` names."""
    if config.url_env:
        url = os.environ.get(config.url_env, "")
        if not url:
            raise ValueError(f"state.url_env: environment variable {config.url_env} is not set")
        return url
    assert config.url is not None  # the schema requires one of the two
    return config.url


def display(url: str) -> str:
    """The URL without credentials, for messages and logs."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"unix://{parts.path}"
    return f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}"


class StateLink:
    """The Redis client of one process and its up/down state; see the module docstring."""

    def __init__(
        self,
        config: StateConfig,
        client: aioredis.Redis | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        url = redis_url(config)
        self.where = display(url)
        timeout = config.timeout_ms / 1000
        if client is None:
            pool = aioredis.BlockingConnectionPool.from_url(
                url,
                max_connections=config.max_connections,
                timeout=timeout,  # waiting for a free connection counts against the same bound
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
            )
            client = aioredis.Redis(connection_pool=pool)
        self.redis = client
        self.prefix = config.prefix
        self._clock = clock
        self._down_since = 0.0  # wall time Redis went down; 0: up
        self._retry_at = 0.0  # monotonic time before which calls fail without I/O
        self.outages = 0  # times Redis went down (for metrics)
        self._periodic: list[tuple[float, Callable[[], Awaitable[None]]]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def up(self) -> bool:
        return not self._down_since

    def _mark_down(self, exc: BaseException) -> None:
        self._retry_at = self._clock() + self.config.retry_s
        if not self._down_since:
            self._down_since = time.time()
            self.outages += 1
            log.warning("shared state unavailable", redis=self.where, error=repr(exc))

    def _mark_up(self) -> None:
        if self._down_since:
            log.warning(
                "shared state back",
                redis=self.where,
                down_s=round(time.time() - self._down_since, 3),
            )
            self._down_since = 0.0

    def describe_down(self) -> str:
        """Why a call failed, for error messages."""
        return f"shared state at {self.where} unreachable"

    async def call(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Runs one Redis operation; raises StateDown when Redis fails or counts as down."""
        if self._down_since and self._clock() < self._retry_at:
            raise StateDown(self.describe_down())
        try:
            result = await operation()
        except (TimeoutError, RedisError, OSError) as exc:
            self._mark_down(exc)
            raise StateDown(f"{self.describe_down()}: {exc}") from exc
        self._mark_up()
        return result

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Runs `coro` in the background, kept until it ends (aclose waits for it)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def every(self, interval_s: float, work: Callable[[], Awaitable[None]]) -> None:
        """Runs `work` every `interval_s` (at the loop's granularity) once started."""
        self._periodic.append((interval_s, work))

    def start(self) -> None:
        if self._loop is None:
            self._loop = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        due = [0.0] * len(self._periodic)
        tick = min([self.config.retry_s, *(i for i, _ in self._periodic)]) / 2
        while not self._closing:
            await asyncio.sleep(tick)
            if not self.up and self._clock() >= self._retry_at:
                with contextlib.suppress(StateDown):
                    await self.call(self.redis.ping)
            now = self._clock()
            for i, (interval, work) in enumerate(self._periodic):
                if now >= due[i] and self.up:
                    due[i] = now + interval
                    try:
                        await work()
                    except StateDown:
                        pass
                    except Exception:  # a bug in one job must not stop the others
                        log.exception("shared state job failed", job=getattr(work, "__name__", ""))

    async def aclose(self, timeout_s: float = 2.0) -> None:
        """Stops the loop, gives background work `timeout_s` to end, closes the client."""
        self._closing = True
        if self._loop is not None:
            # Not awaited unbounded: a cancellation that races the client's own timeout can be
            # lost inside redis-py (seen as a router that never exits after SIGTERM), so the
            # loop also stops at its next turn, and shutdown goes on after `timeout_s`.
            self._loop.cancel()
            await asyncio.wait([self._loop], timeout=timeout_s)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout_s)
        try:
            async with asyncio.timeout(timeout_s):
                await self.redis.aclose()
                await self.redis.connection_pool.disconnect()
        except TimeoutError:
            log.warning("shared state: closing the Redis connections timed out", redis=self.where)
