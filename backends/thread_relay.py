"""Hands items from a worker thread to the event loop, waking the loop once per burst.

The worker calls `put` for every item; only the put that finds the buffer empty (and no wake-up
already pending) schedules a wake-up on the loop (`call_soon_threadsafe`: a self-pipe write and
a loop turn). Items that arrive before the loop gets to them ride along, so a busy loop takes
several tokens in one turn instead of one turn per token. Nothing waits on a timer: the first
item of a burst wakes the loop at once.

The loop side awaits `take()`, which returns everything buffered so far, in order.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any


class ThreadRelay:
    """A single-producer (any thread), single-consumer (the loop) buffer; see the module doc."""

    __slots__ = ("_items", "_lock", "_loop", "_signalled", "_waiter")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._items: list[Any] = []
        self._signalled = False  # a wake-up is scheduled and has not been consumed by take()
        self._waiter: asyncio.Future[None] | None = None

    def put(self, item: Any) -> None:
        """Buffers `item`; wakes the loop only if no wake-up is pending. Any thread."""
        with self._lock:
            self._items.append(item)
            if self._signalled:
                return
            self._signalled = True
        self._loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def take(self) -> list[Any]:
        """Everything buffered, oldest first; waits for the next put when there is nothing."""
        while True:
            with self._lock:
                items = self._items
                # Whatever we take, the next put must wake us again.
                self._signalled = False
                if items:
                    self._items = []
                    return items
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
