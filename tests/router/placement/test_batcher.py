"""Micro-batching: bursts are placed jointly, arrivals during a solve join the next one."""

from __future__ import annotations

import asyncio
import threading

import pytest

from router.config import parse_config
from router.core.errors import RouterError
from router.core.registry import default_registry
from router.placement import solver
from router.placement.batcher import Batcher
from router.placement.pipeline import PolicyPipeline
from tests.conftest import backend_view, context

CONFIG = """
backends:
  a: {type: scripted, model: m}
policies:
  capacity: {type: capacity, parameters: {slots: {a: 2}, tokens_per_minute: {a: 250}}}
profiles:
  default: {policies: [{policy: capacity}]}
"""


@pytest.fixture
def pipeline() -> PolicyPipeline:
    return PolicyPipeline(parse_config(CONFIG, "<test>"), default_registry())


def make_batcher(pipeline: PolicyPipeline, admitted: list) -> Batcher:
    views = [backend_view("a"), backend_view("b")]
    return Batcher(pipeline, lambda: views, lambda ctx, d: admitted.append(d.backend) or "held")


async def test_a_burst_is_placed_as_one_batch_within_capacity(pipeline):
    """Requests that arrive in the same loop turn are solved jointly and honour the slots."""
    admitted: list[str] = []
    batcher = make_batcher(pipeline, admitted)
    contexts = [context(request_id=f"r{i}", prompt_tokens=10, max_tokens=10) for i in range(5)]
    results = await asyncio.gather(*(batcher.place(c, admit=True) for c in contexts))
    decisions = [d for d, _ in results]
    assert {d.batch_size for d in decisions} == {5} and len({d.batch_id for d in decisions}) == 1
    assert sum(d.backend == "a" for d in decisions) == 2 and admitted.count("a") == 2
    assert all(adm == "held" for _, adm in results)
    batcher.close()


async def test_a_lone_request_is_placed_without_a_thread_or_timer(pipeline):
    """A single request with no binding shared limit is solved inline by the argmax tier."""
    batcher = make_batcher(pipeline, [])
    decision, admission = await asyncio.wait_for(batcher.place(context(), admit=False), 1)
    assert decision.solver == solver.SINGLE and decision.batch_size == 1 and admission is None
    batcher.close()


async def test_arrivals_during_a_solve_join_the_next_batch(pipeline, monkeypatch):
    """While one batch is being solved in the worker thread, new arrivals queue and go together."""
    gate = threading.Event()
    real_solve = solver.solve

    def slow_solve(problem, **kw):
        gate.wait(5)
        return real_solve(problem, **kw)

    monkeypatch.setattr(solver, "solve", slow_solve)
    batcher = make_batcher(pipeline, [])
    # Two requests that together exceed a's token limit: a binding side constraint -> thread.
    first = [
        asyncio.ensure_future(batcher.place(context(prompt_tokens=100, max_tokens=100), True))
        for _ in range(2)
    ]
    await asyncio.sleep(0.05)  # the first batch is now waiting in the solver thread
    later = [
        asyncio.ensure_future(batcher.place(context(request_id=f"l{i}"), False)) for i in range(3)
    ]
    await asyncio.sleep(0.05)
    gate.set()
    done = await asyncio.gather(*first, *later, return_exceptions=True)
    later_decisions = [d for d, _ in done[2:]]
    assert {d.batch_size for d in later_decisions} == {3}
    assert len({d.batch_id for d in later_decisions}) == 1
    batcher.close()


class _Held:
    """An admission that records whether it was given back."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.released = False

    def release(self) -> None:
        self.released = True


async def test_cancel_in_the_turn_the_result_is_set_releases_the_admission(pipeline):
    """A caller cancelled between set_result and its wake-up gives its admission back."""
    loop = asyncio.get_running_loop()
    held: list[_Held] = []
    caller: list[asyncio.Task] = []

    def admit(ctx, decision):
        # Runs right before set_result; the cancel lands after it, before the caller wakes up.
        loop.call_soon(caller[0].cancel)
        held.append(_Held(decision.backend))
        return held[-1]

    views = [backend_view("a"), backend_view("b")]
    batcher = Batcher(pipeline, lambda: views, admit)
    caller.append(asyncio.ensure_future(batcher.place(context(), admit=True)))
    with pytest.raises(asyncio.CancelledError):
        await caller[0]
    assert len(held) == 1 and held[0].released
    batcher.close()


async def test_cancel_during_admission_releases_it_and_serves_the_rest(pipeline):
    """A caller cancelled while it is being admitted is released; the rest of its batch goes on."""
    held: list[_Held] = []
    callers: list[asyncio.Task] = []

    def admit(ctx, decision):
        if ctx.request.request_id == "r0":
            callers[0].cancel()  # the future is cancelled before its result can be set
        held.append(_Held(decision.backend))
        return held[-1]

    views = [backend_view("a"), backend_view("b")]
    batcher = Batcher(pipeline, lambda: views, admit)
    for i in range(3):
        callers.append(asyncio.ensure_future(batcher.place(context(request_id=f"r{i}"), True)))
    done = await asyncio.wait_for(asyncio.gather(*callers, return_exceptions=True), 2)
    assert isinstance(done[0], asyncio.CancelledError) and held[0].released
    assert [adm for _, adm in done[1:]] == held[1:] and not any(h.released for h in held[1:])
    batcher.close()


async def test_a_plugin_bug_at_admission_fails_only_its_request(pipeline):
    """An admit raising a non-RouterError gives that request INTERNAL (no detail), not a hang."""
    held: list[_Held] = []

    def admit(ctx, decision):
        if ctx.request.request_id == "r1":
            raise ValueError("secret plugin detail")
        held.append(_Held(decision.backend))
        return held[-1]

    views = [backend_view("a"), backend_view("b")]
    batcher = Batcher(pipeline, lambda: views, admit)
    tasks = [batcher.place(context(request_id=f"r{i}"), admit=True) for i in range(4)]
    done = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 2)
    failed = done[1]
    assert isinstance(failed, RouterError) and failed.code == "INTERNAL"
    assert "secret" not in str(failed) and "ValueError" not in str(failed)
    assert [adm for _, adm in (done[0], *done[2:])] == held and len(held) == 3
    batcher.close()
