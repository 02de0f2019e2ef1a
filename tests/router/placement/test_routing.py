"""Placement through the real gRPC server: policies, micro-batching, RouteBatch, refusals."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from typing import Any

import grpc
import pytest

from router.api import router_pb2 as pb
from tests.conftest import SMOLLM2, request


def fleet(**overrides: Any) -> dict[str, Any]:
    """The real edge model, a self-hosted GPU stand-in and a third-party API (both scripted)."""
    config: dict[str, Any] = {
        "backends": {
            "edge": {
                "type": "llamacpp",
                "model": "smollm2",
                "gguf": SMOLLM2,
                "context_window": 1024,
                "threads": 2,
                "replicas": 1,
                "max_queue": 4,
                "performance": {"prefill_tokens_per_s": 400, "decode_tokens_per_s": 60},
            },
            "gpu": {
                "type": "scripted",
                "model": "llama-70b",
                "tier": "cloud_gpu",
                "context_window": 8192,
                "max_concurrency": 3,
                "region": "eu",
                "price": {"input_per_mtok": 0.2, "output_per_mtok": 0.6},
                "performance": {"prefill_tokens_per_s": 20000, "rtt_ms": 20},
            },
            "api": {
                "type": "scripted",
                "model": "gpt-x",
                "tier": "remote_api",
                "context_window": 128000,
                "region": "us",
                "price": {"input_per_mtok": 2.5, "output_per_mtok": 10.0},
                "performance": {"prefill_tokens_per_s": 50000, "rtt_ms": 150},
            },
        },
        "policies": {
            "capability": {"type": "capability"},
            "privacy": {"type": "privacy"},
            "cost": {"type": "cost"},
            "latency": {"type": "latency"},
            "capacity": {"type": "capacity"},
            "budget": {
                "type": "budget",
                "parameters": {
                    "budgets": [{"tenant": "capped", "limit_usd": 0.0004, "window": "1h"}]
                },
            },
        },
        "profiles": {
            "default": {
                "policies": [
                    {"policy": p}
                    for p in ("capability", "privacy", "cost", "latency", "capacity", "budget")
                ]
            },
        },
    }
    config.update(overrides)
    return config


async def test_decision_explains_scores_and_rejections(start_server):
    """A decision lists every backend with per-policy scores, or the policy that rejected it."""
    srv = await start_server(fleet())
    d = await srv.stub.Route(request("Draft a reply.", privacy=pb.CONFIDENTIAL, max_tokens=64))
    by_name = {c.backend: c for c in d.candidates}
    assert d.backend in ("edge", "gpu") and d.solver == "single"
    assert not by_name["api"].feasible and by_name["api"].rejected_by == "privacy"
    assert set(by_name["gpu"].scores) == {"cost", "latency"} and by_name["gpu"].total > 0
    gpu = by_name["gpu"]  # total time = TTFT + 64 output tokens at 50 tokens/s (configured)
    assert gpu.estimated_total_ms == pytest.approx(gpu.estimated_ttft_ms + 64 / 50 * 1e3)


async def test_detected_card_number_keeps_request_off_third_party(start_server):
    """An UNSPECIFIED request with a valid card number is raised to RESTRICTED and stays home."""
    srv = await start_server(fleet())
    d = await srv.stub.Route(request("Charge card 4111 1111 1111 1111 please", max_tokens=16))
    assert d.privacy == pb.RESTRICTED and "card" in d.detected and d.backend != "api"


async def test_restricted_with_only_third_party_is_refused_naming_privacy(start_server):
    """RESTRICTED with only a third-party backend is FAILED_PRECONDITION naming privacy."""
    config = fleet()
    config["backends"] = {"api": config["backends"]["api"]}
    config["profiles"] = {"default": {"policies": [{"policy": "cost"}]}}  # no privacy policy at all
    srv = await start_server(config)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await srv.stub.Route(request(privacy=pb.RESTRICTED))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "api excluded by privacy: RESTRICTED request may never use a third_party backend" in (
        err.value.details()
    )


def capped_fleet(limit_usd: float) -> dict[str, Any]:
    """gpu and api only; tenant "capped" has a budget of `limit_usd` per hour."""
    config = fleet()
    del config["backends"]["edge"]
    config["policies"]["budget"]["parameters"]["budgets"][0]["limit_usd"] = limit_usd
    return config


async def drain(call) -> pb.Usage:
    usage = None
    async for msg in call:
        usage = msg.usage if msg.HasField("usage") else usage
    return usage


# "Hello" is ~5 prompt tokens (estimated: no tokenizer among these backends); on gpu the worst
# The hold for the worst case (max_tokens 20), with the prompt's upper bound of 25 tokens (5 bytes
# + 4 of role + 8 + 8) since scripted backends have no tokenizer: 25 x 0.2e-6 + 20 x 0.6e-6 =
# $17e-6. The 7-word reply really costs 5 x 0.2e-6 + 7 x 0.6e-6 = $5.2e-6.
CAPPED = request("Hello", tenant="capped", max_tokens=20, privacy=pb.CONFIDENTIAL)


async def test_budget_is_reserved_settled_and_then_exhausted(start_server):
    """Generate settles real cost; once the budget runs out, RESOURCE_EXHAUSTED names it."""
    srv = await start_server(capped_fleet(30e-6))
    served = 0
    while True:
        try:
            usage = await drain(srv.stub.Generate(CAPPED))
        except grpc.aio.AioRpcError as err:
            assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "gpu excluded by budget: budget capped/1h" in err.details()
            break
        assert usage.cost_usd == pytest.approx(5.2e-6)
        served += 1
    assert served == 3  # 30 - 2 x 5.2 >= 17, 30 - 3 x 5.2 < 17
    budget = srv.server.router.pipeline.policies["budget"]
    assert budget.store.held_count() == 0


async def test_concurrent_generates_share_the_budget_jointly(start_server):
    """Three concurrent requests that only two can afford: two run, one is refused, none leaks."""
    config = capped_fleet(40e-6)  # 2 x 17 <= 40 < 3 x 17
    config["backends"]["gpu"]["ttft_ms"] = 300  # keep all three in flight together
    srv = await start_server(config)
    results = await asyncio.gather(
        *(drain(srv.stub.Generate(CAPPED)) for _ in range(3)), return_exceptions=True
    )
    errors = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(errors) == 1 and errors[0].code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "budget capped/1h" in errors[0].details()
    assert srv.server.router.pipeline.policies["budget"].store.held_count() == 0
    assert [b.admitted for b in srv.server.router.backends.values()] == [0, 0]


async def test_concurrent_routes_are_micro_batched_and_respect_capacity(start_server):
    """100 concurrent Route calls are placed in joint batches within each backend's slots."""
    config = fleet()
    config["policies"]["capacity"] = {"type": "capacity", "parameters": {"slots": {"edge": 2}}}
    config["scheduler"] = {"batch_window_ms": 20}
    srv = await start_server(config)
    reqs = [request(f"task {i}", privacy=pb.CONFIDENTIAL, max_tokens=32) for i in range(100)]
    decisions = await asyncio.gather(*(srv.stub.Route(r) for r in reqs), return_exceptions=True)
    placed = [d for d in decisions if isinstance(d, pb.RouteDecision)]
    refused = [d for d in decisions if not isinstance(d, pb.RouteDecision)]
    assert all(e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED for e in refused)
    batches: dict[int, Counter] = defaultdict(Counter)
    for d in placed:
        batches[d.batch_id][d.backend] += 1
        assert d.backend != "api"  # CONFIDENTIAL stays off third-party backends
    assert max(d.batch_size for d in placed) > 1
    assert any(d.solver == "min-cost-flow" for d in placed)
    for counts in batches.values():
        assert counts["edge"] <= 2 and counts["gpu"] <= 3
    assert len(placed) + len(refused) == 100 and placed


async def test_route_batch_places_jointly_in_order(start_server):
    """RouteBatch returns one decision per request, in order, honouring capacity across them."""
    config = fleet()
    config["policies"]["capacity"] = {"type": "capacity", "parameters": {"slots": {"edge": 1}}}
    srv = await start_server(config)
    reqs = [request(f"sub-task {i}", request_id=f"r{i}", privacy=pb.CONFIDENTIAL) for i in range(6)]
    reply = await srv.stub.RouteBatch(pb.RouteBatchRequest(requests=reqs))
    assert [d.request_id for d in reply.decisions if not d.error] == [
        r.request_id for r, d in zip(reqs, reply.decisions, strict=True) if not d.error
    ]
    counts = Counter(d.backend for d in reply.decisions if not d.error)
    assert counts["edge"] <= 1 and counts["gpu"] <= 3 and counts["api"] == 0
    unplaced = [d for d in reply.decisions if d.error]
    assert len(unplaced) == 2 and all(d.error_code == "RESOURCE_EXHAUSTED" for d in unplaced)
    assert "capacity" in unplaced[0].error
    assert len({d.batch_id for d in reply.decisions if not d.error}) == 1


async def test_route_batch_names_the_bad_request_field(start_server):
    """A bad request inside RouteBatch is INVALID_ARGUMENT naming requests[i].field."""
    srv = await start_server(fleet())
    bad = pb.RouteBatchRequest(requests=[request(), request(max_tokens=-1)])
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await srv.stub.RouteBatch(bad)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details().startswith("requests[1].max_tokens:")


def headroom_fleet(window_ms: float = 0) -> dict[str, Any]:
    """A cheap 8-slot self-hosted GPU and a pricier third-party API, both holding each request
    1.5 s; the default profile keeps 25% of the GPU's slots for private requests."""
    slow = {"ttft_ms": 1500, "context_window": 8192}
    return {
        "scheduler": {"batch_window_ms": window_ms},
        "backends": {
            "gpu": {"type": "scripted", "model": "m", "tier": "cloud_gpu", "max_concurrency": 8}
            | slow,
            "api": {
                "type": "scripted",
                "model": "m",
                "tier": "remote_api",
                "price": {"input_per_mtok": 2.5, "output_per_mtok": 10.0},
            }
            | slow,
        },
        "policies": {
            "privacy": {"type": "privacy"},
            "capacity": {"type": "capacity"},
            "headroom": {"type": "headroom", "parameters": {"fraction": 0.25}},
            "cost": {"type": "cost"},
        },
        "profiles": {
            "default": {
                "policies": [{"policy": p} for p in ("privacy", "capacity", "headroom", "cost")]
            }
        },
    }


async def test_route_batch_keeps_headroom_within_the_batch(start_server):
    """Eight INTERNAL requests in one RouteBatch take at most 6 of the GPU's 8 slots (CP-SAT sees
    the headroom), so the two CONFIDENTIAL requests of the batch still find room there."""
    srv = await start_server(headroom_fleet())
    internal = [request(f"task {i}", privacy=pb.INTERNAL) for i in range(8)]
    reply = await srv.stub.RouteBatch(pb.RouteBatchRequest(requests=internal))
    assert Counter(d.backend for d in reply.decisions) == {"gpu": 6, "api": 2}
    assert {d.solver for d in reply.decisions} == {"cp-sat"}
    private = [request("private", privacy=pb.CONFIDENTIAL) for _ in range(2)]
    reply = await srv.stub.RouteBatch(pb.RouteBatchRequest(requests=internal + private))
    assert Counter(d.backend for d in reply.decisions) == {"gpu": 8, "api": 2}
    assert [d.backend for d in reply.decisions[8:]] == ["gpu", "gpu"]


async def test_concurrent_routes_keep_headroom(start_server):
    """Eight concurrent Route calls batched together place 6 INTERNAL requests on the GPU."""
    srv = await start_server(headroom_fleet(window_ms=300))
    reqs = [request(f"task {i}", privacy=pb.INTERNAL) for i in range(8)]
    decisions = await asyncio.gather(*(srv.stub.Route(r) for r in reqs))
    assert max(d.batch_size for d in decisions) == 8
    assert Counter(d.backend for d in decisions) == {"gpu": 6, "api": 2}


async def test_a_burst_of_generates_leaves_room_for_a_confidential_request(start_server):
    """Eight concurrent INTERNAL Generates leave 2 of the GPU's 8 slots; the CONFIDENTIAL request
    that comes next is placed there, and every slot is back to zero at the end."""
    srv = await start_server(headroom_fleet(window_ms=300))
    backends = srv.server.router.backends
    burst = [
        asyncio.ensure_future(drain(srv.stub.Generate(request(f"t{i}", privacy=pb.INTERNAL))))
        for i in range(8)
    ]
    for _ in range(200):
        if sum(b.admitted for b in backends.values()) == 8:
            break
        await asyncio.sleep(0.01)
    assert (backends["gpu"].admitted, backends["api"].admitted) == (6, 2)
    usage = await drain(srv.stub.Generate(request("private", privacy=pb.CONFIDENTIAL)))
    assert usage.backend == "gpu"
    await asyncio.gather(*burst)
    assert [b.admitted for b in backends.values()] == [0, 0]
