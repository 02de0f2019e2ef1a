"""The thread-to-loop relay: order, one wake-up per burst, and waiting for the next put."""

from __future__ import annotations

import asyncio
import threading

from backends.thread_relay import ThreadRelay


async def test_items_from_a_thread_arrive_in_order():
    """Everything a worker thread puts reaches the loop exactly once, in order."""
    relay = ThreadRelay(asyncio.get_running_loop())
    worker = threading.Thread(target=lambda: [relay.put(i) for i in range(500)])
    worker.start()
    got: list[int] = []
    while len(got) < 500:
        got.extend(await relay.take())
    worker.join()
    assert got == list(range(500))


async def test_a_burst_wakes_the_loop_once_and_is_taken_whole():
    """Items put before the loop looks cost one wake-up and come back from one take()."""
    loop = asyncio.get_running_loop()
    relay = ThreadRelay(loop)
    wakes = 0
    original = loop.call_soon_threadsafe

    def counting(*args):  # type: ignore[no-untyped-def]
        nonlocal wakes
        wakes += 1
        return original(*args)

    loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
    try:
        worker = threading.Thread(target=lambda: [relay.put(i) for i in range(5)])
        worker.start()
        worker.join()
        assert await relay.take() == [0, 1, 2, 3, 4]
        assert wakes == 1
        relay.put(5)  # the buffer emptied: the next put wakes the loop again
        assert await relay.take() == [5] and wakes == 2
    finally:
        del loop.call_soon_threadsafe


async def test_take_waits_for_the_next_put():
    """take() on an empty relay returns as soon as a thread puts, with no timer."""
    loop = asyncio.get_running_loop()
    relay = ThreadRelay(loop)
    pending = asyncio.ensure_future(relay.take())
    await asyncio.sleep(0.01)
    assert not pending.done()
    threading.Thread(target=relay.put, args=("x",)).start()
    assert await asyncio.wait_for(pending, 5) == ["x"]
