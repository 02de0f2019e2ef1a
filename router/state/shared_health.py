"""Shared health: one router's ejection or cool-down of a backend takes it out for all.

When a router ejects a backend (consecutive failures) or cools it down (429/503 with
Retry-After), router/runtime/resilience.py publishes it here: a key per backend holding why,
expiring when the ejection ends. Every router reads these keys every `state.sync_interval_s`
and treats a backend another router took out as out until then, with that reason, subject to
its own last-usable-backend rule. Health probes stay per router: each probes what it uses.
Fails open: while Redis is down each router decides on its own evidence, as without Redis.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterable

from router.state.link import StateDown, StateLink

MAX_REASON_CHARS = 512


class SharedHealth:
    """Ejections and cool-downs shared through Redis; see the module docstring."""

    def __init__(self, link: StateLink, process: str) -> None:
        self._link = link
        self._process = process
        self._names: set[str] = set()
        self._out: dict[str, tuple[float, str]] = {}  # name -> (wall-clock end, reason)
        link.every(link.config.sync_interval_s, self.sync)

    def _key(self, name: str) -> str:
        return f"{self._link.prefix}health:{name}"

    def track(self, names: Iterable[str]) -> None:
        self._names.update(names)

    def publish(self, name: str, duration_s: float, reason: str) -> None:
        """Takes `name` out for every router for `duration_s` (in the background)."""
        end = time.time() + duration_s
        if self._out.get(name, (0.0, ""))[0] < end:
            self._out[name] = (end, reason)
        value = json.dumps({"reason": reason[:MAX_REASON_CHARS], "by": self._process})
        ms = max(1, int(duration_s * 1000))
        self._link.spawn(self._send(self._key(name), value, ms))

    async def _send(self, key: str, value: str, ms: int) -> None:
        with contextlib.suppress(StateDown):  # fails open: this router's tracker still has it
            await self._link.call(lambda: self._link.redis.set(key, value, px=ms))

    def reason(self, name: str) -> str:
        """Why another router took `name` out ("" when none did, or it is over)."""
        out = self._out.get(name)
        if out is None:
            return ""
        left = out[0] - time.time()
        if left <= 0:
            return ""
        return f"out for {left:.0f} s more by the fleet: {out[1]}"

    async def sync(self) -> None:
        """Reads every tracked backend's key (one round trip)."""
        names = sorted(self._names)
        if not names:
            return

        async def read() -> list[object]:
            pipe = self._link.redis.pipeline(transaction=False)
            for name in names:
                pipe.get(self._key(name))
                pipe.pttl(self._key(name))
            return await pipe.execute()

        replies = await self._link.call(read)
        now = time.time()
        out: dict[str, tuple[float, str]] = {}
        for i, name in enumerate(names):
            raw, ttl = replies[2 * i], replies[2 * i + 1]
            if raw is None or not isinstance(ttl, int) or ttl <= 0:
                continue
            try:
                reason = str(json.loads(raw)["reason"])[:MAX_REASON_CHARS]
            except (ValueError, KeyError, TypeError):
                reason = "taken out by another router"
            out[name] = (now + ttl / 1000, reason)
        self._out = out
