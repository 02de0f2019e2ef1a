"""A huge adversarial prompt is scanned off the event loop without stalling other calls."""

from __future__ import annotations

import asyncio
import threading

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
    """A ~1M-character adversarial Route is scanned in a worker thread, and small Route calls
    made meanwhile are answered while it is still being scanned (each small one scanned on the
    loop). Checked by where the scans run and what finished first, not by latencies."""
    srv = await start_server(CONFIG)
    rt = srv.server.router.runtime
    prepare, loop_thread, scans = rt.pipeline.prepare, threading.get_ident(), []

    def spy(ctx):  # type: ignore[no-untyped-def]
        big = ctx.request.chars() > 100_000
        scans.append(("start", big, threading.get_ident()))
        try:
            return prepare(ctx)
        finally:
            scans.append(("end", big, threading.get_ident()))

    rt.pipeline.prepare = spy
    small = request("What is the capital of France?")
    big = asyncio.ensure_future(srv.stub.Route(request(BIG), timeout=300))
    answered = 0
    while not big.done():
        decision = await srv.stub.Route(small, timeout=300)
        assert decision.backend == "big"
        answered += 1
        await asyncio.sleep(0.002)
    assert (await big).privacy == pb.INTERNAL
    big_start = scans.index(("start", True, next(t for e, b, t in scans if b)))
    big_end = next(i for i, (e, b, _) in enumerate(scans) if e == "end" and b)
    assert all(t != loop_thread for _, b, t in scans if b)  # the big scan: off the loop
    assert all(t == loop_thread for _, b, t in scans if not b)  # small ones: inline
    during = [e for e in scans[big_start:big_end] if e[0] == "end" and not e[1]]
    assert answered >= 3 and len(during) >= 2, (answered, scans)
