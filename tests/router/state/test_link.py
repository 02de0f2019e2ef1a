"""The Redis link's own lifecycle: shutdown is bounded whatever its background loop does."""

from __future__ import annotations

import asyncio
import contextlib
import time


async def test_close_is_bounded_when_a_job_swallows_its_cancellation(links) -> None:
    """A periodic job that loses the cancellation (as redis-py can when it races the client's
    timeout) and then waits forever does not hold aclose past its timeout; the loop is gone
    once the event loop cancels it again."""
    link = links()
    entered = asyncio.Event()

    async def stubborn() -> None:
        entered.set()
        with contextlib.suppress(asyncio.CancelledError):  # the lost cancellation
            await asyncio.sleep(3600)
        await asyncio.sleep(3600)

    link.every(0.01, stubborn)
    link.start()
    await asyncio.wait_for(entered.wait(), 5)
    started = time.monotonic()
    await asyncio.wait_for(link.aclose(timeout_s=0.3), 5)  # TimeoutError: it hung
    assert time.monotonic() - started < 2
    loop_task = link._loop
    assert loop_task is not None and not loop_task.done()
    loop_task.cancel()  # what asyncio.run does with the tasks left at exit
    await asyncio.wait([loop_task], timeout=2)
    assert loop_task.done()
