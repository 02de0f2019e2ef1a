"""A huge adversarial prompt is scanned off the event loop without stalling other calls."""

from __future__ import annotations

import asyncio
import time

from router.api import router_pb2 as pb
from tests.conftest import request

CONFIG = {
    "backends": {
        "big": {"type": "scripted", "model": "m", "context_window": 1_048_576},
    },
    "policies": {"privacy": {"type": "privacy"}},
    "profiles": {"default": {"policies": [{"policy": "privacy"}]}},
}
# ~1M characters: runs of "-eyJ" that Python's re scanned in quadratic time per run (the old JWT
# rule: ~10 s in all, holding the GIL), then near misses for the other rules' validators (fewer
# than detectors.MAX_CANDIDATES of each, past which a rule counts as fired).
BIG = (("-eyJ" * 5_000 + " ") * 40) + ("+1 2 GB82 4111-1111 " * 4_000)


async def test_huge_adversarial_route_does_not_stall_small_routes(start_server):
    """Small Route calls made while a ~1M-character adversarial Route is scanned stay fast."""
    srv = await start_server(CONFIG)
    small = request("What is the capital of France?")
    await srv.stub.Route(small)
    started = time.perf_counter()
    big = asyncio.ensure_future(srv.stub.Route(request(BIG), timeout=300))
    latencies = []
    while not big.done():
        t0 = time.perf_counter()
        decision = await srv.stub.Route(small, timeout=300)
        latencies.append(time.perf_counter() - t0)
        assert decision.backend == "big"
        await asyncio.sleep(0.002)
    big_s = time.perf_counter() - started
    assert (await big).privacy == pb.INTERNAL
    assert len(latencies) >= 3 and max(latencies) < big_s / 2, (big_s, latencies)
