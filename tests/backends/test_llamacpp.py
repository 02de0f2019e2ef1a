"""The llama.cpp edge backend on the real SmolLM2 GGUF: streaming, counts, pool and queue."""

from __future__ import annotations

import asyncio

import pytest

from backends.llamacpp import LlamaCppBackend, LlamaCppConfig, _coalesced
from router.core.backend import Finish, TextDelta
from router.core.errors import InvalidArgument, ResourceExhausted
from router.core.types import ChatMessage, Request
from tests.conftest import SMOLLM2


def make_request(text: str = "Hello!", max_tokens: int = 8) -> Request:
    return Request("r", "t", (ChatMessage("user", text),), max_tokens, 0.0)


@pytest.fixture
async def backend():
    b = LlamaCppBackend(
        "edge",
        LlamaCppConfig(
            type="llamacpp", model="m", gguf=SMOLLM2, context_window=256, threads=2, max_queue=1
        ),
    )
    await b.start()
    yield b
    await b.aclose()


async def test_stream_ends_with_one_finish_and_counts_tokens(backend):
    """Deltas come first, then exactly one Finish whose counts match the template and the stream
    (each delta carries the tokens it holds: several when they were ready together)."""
    events = [e async for e in backend.generate(make_request(max_tokens=5))]
    *deltas, finish = events
    assert all(isinstance(d, TextDelta) for d in deltas) and isinstance(finish, Finish)
    assert finish.completion_tokens == sum(d.tokens for d in deltas) <= 5
    assert finish.prompt_tokens == backend.count_prompt_tokens(make_request())
    assert finish.finish_reason in ("stop", "length")


async def test_generation_runs_off_the_event_loop(backend):
    """The loop stays responsive during a real generation: its longest stall is a small fraction
    of the generation's time (run on the loop, the stall would be the whole generation)."""
    loop = asyncio.get_running_loop()
    gaps: list[float] = []

    async def ticker():
        last = loop.time()
        while True:
            await asyncio.sleep(0.005)
            now = loop.time()
            gaps.append(now - last)
            last = now

    task = asyncio.ensure_future(ticker())
    await asyncio.sleep(0.02)  # the ticker is running before generation starts
    start = loop.time()
    events = [e async for e in backend.generate(make_request("Tell me a story.", max_tokens=32))]
    duration = loop.time() - start
    task.cancel()
    assert isinstance(events[-1], Finish) and events[-1].completion_tokens >= 8
    print(f"longest loop stall {max(gaps):.3f} s during {duration:.3f} s of generation")
    assert max(gaps) < duration / 4, f"loop stalled {max(gaps):.3f} s of {duration:.3f} s"


async def test_prompt_beyond_the_context_window_is_invalid(backend):
    """A prompt that does not fit the instance's context raises InvalidArgument on messages."""
    with pytest.raises(InvalidArgument) as err:
        async for _ in backend.generate(make_request("word " * 400, max_tokens=8)):
            pass
    assert err.value.field == "messages"


async def test_queue_limit_refuses_at_once_and_closing_frees_the_slot(backend):
    """With the replica busy and max_queue=1 waiting, a third request is refused; closing frees."""
    first = backend.generate(make_request(max_tokens=200))
    await anext(first)
    second = asyncio.ensure_future(anext(backend.generate(make_request(max_tokens=2))))
    while backend.load().queued == 0:
        await asyncio.sleep(0.005)
    with pytest.raises(ResourceExhausted, match="max_queue 1"):
        await anext(backend.generate(make_request()))
    await first.aclose()
    assert isinstance(await asyncio.wait_for(second, 30), TextDelta)


def test_deltas_ready_together_become_one_with_their_token_count():
    """What the worker emitted between two loop turns is merged into one delta per run of text,
    tokens summed, with the Finish kept after it (a single item passes through as it is)."""
    finish = Finish(3, 4, "stop")
    items = [TextDelta("a", 1), TextDelta("b", 2), finish, TextDelta("c", 1)]
    assert _coalesced(items) == [TextDelta("ab", 3), finish, TextDelta("c", 1)]
    assert _coalesced([TextDelta("x", 1)]) == [TextDelta("x", 1)]


async def test_a_stream_read_slowly_keeps_exact_counts(backend):
    """A consumer that lags behind the model gets fewer, larger deltas whose tokens still add up
    to the Finish's count and whose text is the same as read promptly."""
    prompt = make_request("Count from one to twenty.", max_tokens=24)
    prompt_text = "".join(
        [e.text async for e in backend.generate(prompt) if isinstance(e, TextDelta)]
    )
    slow: list[TextDelta | Finish] = []
    async for event in backend.generate(prompt):
        slow.append(event)
        await asyncio.sleep(0.05)  # several tokens' time
    *deltas, finish = slow
    assert isinstance(finish, Finish) and finish.completion_tokens == sum(d.tokens for d in deltas)
    assert len(deltas) < finish.completion_tokens
    assert "".join(d.text for d in deltas) == prompt_text


async def test_default_threads_are_the_cores_over_the_workers(monkeypatch):
    """Without `threads`, a model instance of one of N workers runs on the cores over N."""
    import os

    from router.core.workers import WORKERS_ENV

    monkeypatch.setenv(WORKERS_ENV, "2")
    b = LlamaCppBackend(
        "edge", LlamaCppConfig(type="llamacpp", model="m", gguf=SMOLLM2, context_window=256)
    )
    await b.start()
    try:
        assert b._instances[0].llm.n_threads == max(1, (os.cpu_count() or 1) // 2)
    finally:
        await b.aclose()
