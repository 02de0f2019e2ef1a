"""Accounting on a real server: streams that end early are charged what they produced, backend
statistics are per attempt, and cost caps and budget holds bound the real cost (CJK, emoji)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import grpc
import pytest
import structlog

from router.core.estimates import cost_usd, prompt_tokens_bound, prompt_tokens_estimate
from router.core.types import ChatMessage, Request
from tests.conftest import SMOLLM2, request
from tests.fakes.fake_upstream import FakeUpstream, Script
from tests.router.runtime.test_fallback import assert_nothing_leaks, collect, fleet, http_backend

PRICE = 0.1  # $ per million tokens, input and output, of the primary backend in `fleet`


@pytest.fixture
async def second_upstream():
    """The fallback's scripted upstream."""
    server = await FakeUpstream.start()
    yield server
    await server.close()


def _plain(text: str) -> Request:
    return Request("r", "t", (ChatMessage("user", text),), 1, 0.0)


def spent_usd(srv: Any, tenant: str = "default") -> float:
    """What the tenant's budget has spent in its current window (with no hold left open)."""
    budget = srv.server.router.pipeline.policies["budget"]
    assert budget.store.held_count() == 0
    (a,) = budget._applicable(tenant)
    return a.spec.limit_usd - budget.store.available(a.key, a.spec.limit_usd, a.spec.window)


def partial_cost(text: str, completion: int) -> float:
    """The charge for a partial stream on the primary: estimated prompt + tokens produced."""
    prompt = prompt_tokens_estimate(_plain(text))
    return (prompt + completion) * PRICE / 1e6


async def request_log_record(path: Path, request_id: str) -> dict[str, Any]:
    """The request-log line for `request_id` (written by a background thread: polled)."""
    for _ in range(200):
        if path.exists():
            for line in path.read_text().splitlines():
                record = json.loads(line)
                if record["request_id"] == request_id:
                    return record
        await asyncio.sleep(0.01)
    raise AssertionError(f"no request-log record for {request_id}")


async def partial_fleet(start_server, upstream, second_upstream, tmp_path):
    config = fleet(upstream.base_url, second_upstream.base_url)
    config["server"] = {"request_log": str(tmp_path / "requests.jsonl")}
    return await start_server(config)


async def check_partial(srv, upstream, second_upstream, tmp_path, logs, rid, text, k, status):
    """Spend, usage log line and request-log record all show prompt + k tokens, no hold left."""
    await assert_nothing_leaks(srv, upstream, second_upstream)
    assert spent_usd(srv) == pytest.approx(partial_cost(text, k))
    record = await request_log_record(tmp_path / "requests.jsonl", rid)
    prompt = prompt_tokens_estimate(_plain(text))
    assert record["completion_tokens"] == k and record["prompt_tokens"] == prompt
    assert record["cost_usd"] == pytest.approx(partial_cost(text, k))
    assert record["status"] == status and record["backend"] == "primary"
    (line,) = [e for e in logs if e.get("request_id") == rid and e["event"] == "generate"]
    assert line["completion_tokens"] == k and line["prompt_tokens"] == prompt
    assert line["cost_usd"] == pytest.approx(partial_cost(text, k))


async def test_a_cancel_after_k_tokens_charges_prompt_and_k(
    start_server, upstream, second_upstream, tmp_path
):
    """A client that cancels after 3 of 10 tokens is charged the prompt + 3 tokens."""
    srv = await partial_fleet(start_server, upstream, second_upstream, tmp_path)
    upstream.script(Script(tokens=10, delay_s=0.3))
    text = "Count to ten."
    with structlog.testing.capture_logs() as logs:
        call = srv.stub.Generate(request(text, request_id="cancel-3", max_tokens=10))
        assert (await call.read()).HasField("decision")
        for _ in range(3):
            assert (await call.read()).HasField("delta")
        call.cancel()
        await assert_nothing_leaks(srv, upstream, second_upstream)
    await check_partial(
        srv, upstream, second_upstream, tmp_path, logs, "cancel-3", text, 3, "CANCELLED"
    )


async def test_a_deadline_after_some_tokens_charges_what_was_produced(
    start_server, upstream, second_upstream, tmp_path
):
    """A gRPC deadline that expires mid-stream charges the prompt + the tokens produced."""
    srv = await partial_fleet(start_server, upstream, second_upstream, tmp_path)
    upstream.script(Script(tokens=10, delay_s=0.25))
    text = "Count to ten slowly."
    with structlog.testing.capture_logs() as logs:
        call = srv.stub.Generate(request(text, request_id="late", max_tokens=10), timeout=0.9)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await collect(call)
        assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        await assert_nothing_leaks(srv, upstream, second_upstream)
    record = await request_log_record(tmp_path / "requests.jsonl", "late")
    k = record["completion_tokens"]
    assert 1 <= k < 10  # the stream had started and did not finish
    await check_partial(
        srv, upstream, second_upstream, tmp_path, logs, "late", text, k, "CANCELLED"
    )


async def test_an_upstream_failure_after_k_tokens_charges_prompt_and_k(
    start_server, upstream, second_upstream, tmp_path
):
    """An upstream that drops the connection after 4 tokens: UNAVAILABLE, charged prompt + 4."""
    srv = await partial_fleet(start_server, upstream, second_upstream, tmp_path)
    upstream.script(Script(mode="close", after=4, tokens=10))
    text = "Tell me something."
    with structlog.testing.capture_logs() as logs:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await collect(srv.stub.Generate(request(text, request_id="drop-4", max_tokens=10)))
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    await check_partial(
        srv, upstream, second_upstream, tmp_path, logs, "drop-4", text, 4, "UNAVAILABLE"
    )


async def test_a_fallback_backend_keeps_its_own_ttft(start_server, upstream, second_upstream):
    """After the primary stalls 1 s and fails, the fast fallback's observed TTFT stays small,
    while the usage reports the client-visible TTFT from the request's start."""
    config = fleet(upstream.base_url, second_upstream.base_url)
    config["backends"]["primary"]["timeouts"] = {"first_token_s": 1.0}
    srv = await start_server(config)
    upstream.script(Script(mode="hang"))
    _, deltas, usage = await collect(srv.stub.Generate(request(max_tokens=5)))
    assert usage.backends_tried == ["primary", "secondary"] and "".join(deltas) == "t0 t1 t2 t3 t4 "
    assert usage.ttft_ms >= 1000
    stats = srv.server.router.runtime.stats
    assert 0 < stats["secondary"].ttft_ms < 500 and stats["secondary"].request_ms < 500
    assert stats["primary"].requests == 0  # a failed attempt is not a sample of speed


# Text whose tokens a 4-characters-a-token estimate undercounts several times over.
TEXTS = {
    "cjk": "東京都の天気は晴れです。明日は雨が降るでしょう。" * 12,
    "emoji": "😀🎉🚀🔥👍🌈🍕🎸" * 15,
}


@pytest.fixture(scope="module")
def tokenizer():
    """The real byte-level BPE tokenizer of SmolLM2 (vocabulary only)."""
    import llama_cpp

    from backends.gguf import resolve_gguf

    llm = llama_cpp.Llama(model_path=str(resolve_gguf(SMOLLM2)), vocab_only=True, verbose=False)
    yield lambda text: len(llm.tokenize(text.encode(), add_bos=False, special=False))
    llm.close()


def real_prompt_tokens(tokenizer, text: str) -> int:
    """What a server with this tokenizer reports: content tokens + OpenAI's 3 a message + 3."""
    return tokenizer(text) + 3 + 3


def cap_fleet(upstream: FakeUpstream, budget_usd: float = 100.0) -> dict[str, Any]:
    """One priced HTTP backend (no tokenizer of its own) with a per-tenant budget."""
    return {
        "backends": {"api": http_backend(upstream.base_url, 0.0, context_window=100000)},
        "policies": {
            "cost": {"type": "cost"},
            "budget": {
                "type": "budget",
                "parameters": {
                    "budgets": [{"tenant": "*", "limit_usd": budget_usd, "window": "1h"}]
                },
            },
        },
        "profiles": {"default": {"policies": [{"policy": "cost"}, {"policy": "budget"}]}},
    }


def priced(config: dict[str, Any]) -> dict[str, Any]:
    config["backends"]["api"]["price"] = {"input_per_mtok": 1000.0, "output_per_mtok": 1000.0}
    return config


@pytest.mark.parametrize("kind", list(TEXTS))
async def test_max_cost_usd_bounds_the_real_cost(start_server, upstream, tokenizer, kind):
    """With CJK or emoji prompts, a request either fits its max_cost_usd for real or is refused."""
    text = TEXTS[kind]
    real = real_prompt_tokens(tokenizer, text)
    bound = prompt_tokens_bound(_plain(text))
    assert prompt_tokens_estimate(_plain(text)) < real <= bound
    srv = await start_server(priced(cap_fleet(upstream)))
    per_token = 1000.0 / 1e6
    for cap_tokens in (real - 1, (real + bound) // 2, bound + 5):  # + 5 tokens of output
        upstream.script(Script(tokens=5, prompt_tokens=real))
        cap = (cap_tokens + 0.5) * per_token
        msg = request(text, max_tokens=5, max_cost_usd=cap)
        try:
            _, _, usage = await collect(srv.stub.Generate(msg))
        except grpc.aio.AioRpcError as err:
            assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert "exceeds max_cost_usd" in err.details()
            assert cap_tokens < bound + 5  # refused only when the bound does not fit
            continue
        assert usage.prompt_tokens == real and usage.cost_usd <= cap
        assert cap_tokens == bound + 5


@pytest.mark.parametrize("kind", list(TEXTS))
async def test_a_budget_hold_covers_the_real_cost(start_server, upstream, tokenizer, kind):
    """The hold taken for a CJK or emoji prompt covers what the upstream really charges, so a
    budget is never overspent."""
    text = TEXTS[kind]
    real = real_prompt_tokens(tokenizer, text)
    price = {"input_per_mtok": 1000.0, "output_per_mtok": 1000.0}
    real_cost = cost_usd(_price(price), real, 5)
    # A budget that the real cost overshoots, though a 4-characters-a-token hold would fit it.
    srv = await start_server(priced(cap_fleet(upstream, budget_usd=real_cost * 0.9)))
    upstream.script(Script(tokens=5, prompt_tokens=real))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await collect(srv.stub.Generate(request(text, max_tokens=5)))
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert spent_usd(srv, "default") == 0.0
    # With room for the bound, the hold is in place while streaming and covers the real cost.
    srv = await start_server(priced(cap_fleet(upstream, budget_usd=1.0)))
    upstream.script(Script(tokens=5, prompt_tokens=real, delay_s=0.2))
    budget = srv.server.router.pipeline.policies["budget"]
    (a,) = budget._applicable("default")
    call = srv.stub.Generate(request(text, max_tokens=5))
    assert (await call.read()).HasField("decision")
    held = 1.0 - budget.store.available(a.key, 1.0, a.spec.window)
    _, _, usage = await collect(call)
    assert usage.cost_usd == pytest.approx(real_cost) and held >= usage.cost_usd
    assert spent_usd(srv, "default") == pytest.approx(real_cost)


def _price(spec: dict[str, float]):
    from router.config import PriceConfig

    return PriceConfig(**spec)
