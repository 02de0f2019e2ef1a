"""Long loops on the event loop, cut into slices so that other calls keep being served.

`sliced()` hands out the items of an iterable and gives the event loop a turn whenever a slice
of work (SLICE_S) has passed since the last turn. A loop that finishes within one slice never
yields, so small batches pay nothing. Used where the work reads state that lives on the loop
(policies, budgets, backend counters) and so must not move to a worker thread.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from typing import TypeVar

T = TypeVar("T")

SLICE_S = 0.002  # work between two loop turns, at most about this long


async def sliced(items: Iterable[T], slice_s: float = SLICE_S) -> AsyncIterator[T]:
    """Yields `items`, with a loop turn whenever `slice_s` seconds passed since the last one."""
    clock = time.perf_counter
    until = clock() + slice_s
    for item in items:
        yield item
        if clock() >= until:
            await asyncio.sleep(0)
            until = clock() + slice_s
