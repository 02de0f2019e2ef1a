"""The fleet's processes: which config version each runs, and admin reloads that reach all.

Every process writes what it runs (config version and source, when it loaded it, host, pid)
every `state.sync_interval_s` under its own key, expiring after three intervals, and keeps
the last listing of the fleet for the admin API (`GetConfig` lists every process) and the
metrics (processes per config version). A process that stops leaves the listing at once; one
that dies drops out when its key expires.

A `ReloadConfig` through the admin API reloads the process it reached and then announces it;
every other process applies the same on its next sync: the sent text (through its own reload
guard), or its own config file when the call sent none. SIGHUP and file watching stay per
process (`serve --workers` signals every worker; a Kubernetes ConfigMap reaches every pod).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

from router.state.link import StateDown, StateLink

log = structlog.get_logger("tokenrouter")
MAX_LISTED = 1000  # processes listed at most


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """One process of the fleet, as it last reported itself."""

    id: str
    host: str
    pid: int
    version: str
    source: str
    loaded_at: float
    seen_at: float


Describe = Callable[[], tuple[str, str, float]]  # () -> (version, source, loaded_at)
Reload = Callable[[str | None], Awaitable[object]]  # text (None: own file) -> reloaded


class Processes:
    """This process's entry in the fleet and the fleet's listing; see the module docstring."""

    def __init__(self, link: StateLink, process: str) -> None:
        self._link = link
        self.process = process
        self._describe: Describe | None = None
        self._reload: Reload | None = None
        self._seen: str | None = None  # the last reload announcement applied or skipped
        self.fleet: list[ProcessInfo] = []
        interval = link.config.sync_interval_s
        self._ttl_ms = max(int(3 * interval * 1000), 3000)
        self._set = f"{link.prefix}processes"
        self._announce_key = f"{link.prefix}reload"
        link.every(interval, self.heartbeat)

    def _info_key(self, id: str) -> str:
        return f"{self._link.prefix}process:{id}"

    def attach(self, describe: Describe, reload: Reload) -> None:
        """What this process reports, and how it applies a reload another one announced."""
        self._describe, self._reload = describe, reload

    async def heartbeat(self) -> None:
        """Reports this process, reads the fleet and applies a reload announced meanwhile."""
        if self._describe is None:
            return
        version, source, loaded_at = self._describe()
        now = time.time()
        entry = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "version": version,
            "source": source,
            "loaded_at": loaded_at,
            "seen_at": now,
        }

        async def report() -> list[Any]:
            pipe = self._link.redis.pipeline(transaction=False)
            pipe.set(self._info_key(self.process), json.dumps(entry), px=self._ttl_ms)
            pipe.zadd(self._set, {self.process: now})
            pipe.zremrangebyscore(self._set, "-inf", now - self._ttl_ms / 1000)
            pipe.zrange(self._set, 0, MAX_LISTED - 1)
            pipe.get(self._announce_key)
            return await pipe.execute()

        *_, ids, announced = await self._link.call(report)
        await self._list([i.decode() if isinstance(i, bytes) else str(i) for i in ids])
        await self._follow(announced)

    async def _list(self, ids: list[str]) -> None:
        if not ids:
            self.fleet = []
            return
        keys = [self._info_key(i) for i in ids]
        raws = await self._link.call(lambda: self._link.redis.mget(keys))
        fleet = []
        for id, raw in zip(ids, raws, strict=True):
            if raw is None:
                continue
            try:
                e = json.loads(raw)
                fleet.append(
                    ProcessInfo(
                        id,
                        str(e["host"]),
                        int(e["pid"]),
                        str(e["version"]),
                        str(e["source"]),
                        float(e["loaded_at"]),
                        float(e["seen_at"]),
                    )
                )
            except (ValueError, KeyError, TypeError):
                continue  # not ours: skipped
        self.fleet = sorted(fleet, key=lambda p: p.id)

    async def _follow(self, announced: bytes | None) -> None:
        if announced is None:
            self._seen = self._seen or ""
            return
        try:
            message = json.loads(announced)
            token, origin, text = str(message["token"]), str(message["origin"]), message["text"]
        except (ValueError, KeyError, TypeError):
            return
        first = self._seen is None
        if token == self._seen:
            return
        self._seen = token
        if first:
            return  # at start: what was announced before this process ran is not replayed
        if origin == self.process or self._reload is None:
            return
        log.info("fleet reload", origin=origin, sent=text is not None)
        try:
            await self._reload(text if isinstance(text, str) else None)
        except Exception as exc:  # logged by the reload; this process keeps its config
            log.warning("fleet reload rejected here", origin=origin, error=str(exc))

    async def announce(self, text: str | None) -> None:
        """Tells every other process to apply this reload (the text, or their own file)."""
        message = {"token": os.urandom(8).hex(), "origin": self.process, "text": text}
        try:
            await self._link.call(
                lambda: self._link.redis.set(self._announce_key, json.dumps(message))
            )
        except StateDown as exc:
            log.warning("reload not announced to the fleet", error=str(exc))

    async def leave(self) -> None:
        """Takes this process out of the listing (at shutdown)."""

        async def remove() -> None:
            pipe = self._link.redis.pipeline(transaction=False)
            pipe.delete(self._info_key(self.process))
            pipe.zrem(self._set, self.process)
            await pipe.execute()

        with contextlib.suppress(StateDown):
            await self._link.call(remove)
