"""Tokens admitted per backend over a rolling minute: the state behind tokens-per-minute limits.

Kept by the router across config reloads (in its PluginHandle) and read by policies such as
`capacity`; a shared store (e.g. Redis) can implement the same two methods later.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

WINDOW_S = 60.0


class TokenWindow:
    """Tokens admitted per backend over the last WINDOW_S seconds."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._events: dict[str, deque[tuple[float, int]]] = {}
        self._totals: dict[str, int] = {}

    def used(self, backend: str) -> int:
        """Tokens admitted to `backend` within the window."""
        events = self._events.get(backend)
        if not events:
            return 0
        horizon = self._clock() - WINDOW_S
        while events and events[0][0] < horizon:
            self._totals[backend] -= events.popleft()[1]
        return self._totals[backend]

    def add(self, backend: str, tokens: int) -> None:
        """Counts `tokens` admitted to `backend` now."""
        self._events.setdefault(backend, deque()).append((self._clock(), tokens))
        self._totals[backend] = self._totals.get(backend, 0) + tokens
