"""Cloud and remote backends through the router: real llama.cpp server, faults, fallback, health.

Fault injection uses the project's scripted upstream (tests/fakes/fake_upstream.py); the cloud-GPU
stand-in is a real `python -m llama_cpp.server` process. After each test nothing may leak: no
admitted request, no budget hold, no open upstream stream.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

from router.api import router_pb2 as pb
from router.api.convert import request_from_pb
from router.core.estimates import prompt_tokens_estimate
from router.core.types import ChatMessage, Request
from tests.conftest import request
from tests.fakes.fake_upstream import FakeUpstream, Script
from tests.llamacpp_server import start_llamacpp_server

FAST = {"connect_s": 1, "first_token_s": 0.5, "between_tokens_s": 0.5, "total_s": 10}


def http_backend(url: str, price: float, **extra: Any) -> dict[str, Any]:
    spec = {
        "type": "openai",
        "base_url": url,
        "model": "m",
        "context_window": 4096,
        "timeouts": FAST,
        "metrics": "none",
        "price": {"input_per_mtok": price, "output_per_mtok": price},
    }
    spec.update(extra)
    return spec


def fleet(primary: str, secondary: str, **health: Any) -> dict[str, Any]:
    """primary is cheaper, so placement picks it first; secondary is the fallback."""
    return {
        "health": {"probe_interval_s": 3600, "base_ejection_s": 30, **health},
        "backends": {
            "primary": http_backend(primary, 0.1),
            "secondary": http_backend(secondary, 5.0),
        },
        "policies": {
            "capability": {"type": "capability"},
            "privacy": {"type": "privacy"},
            "cost": {"type": "cost", "parameters": {"reference_usd": 1e-5}},
            "budget": {
                "type": "budget",
                "parameters": {"budgets": [{"tenant": "*", "limit_usd": 100, "window": "1h"}]},
            },
        },
        "profiles": {
            "default": {
                "policies": [{"policy": p} for p in ("capability", "privacy", "budget", "cost")]
            }
        },
    }


async def collect(call) -> tuple[list[pb.RouteDecision], list[str], pb.Usage | None]:
    decisions, deltas, usage = [], [], None
    while (msg := await call.read()) is not grpc.aio.EOF:
        kind = msg.WhichOneof("event")
        if kind == "decision":
            decisions.append(msg.decision)
        elif kind == "delta":
            deltas.append(msg.delta.text)
        else:
            usage = msg.usage
    return decisions, deltas, usage


@pytest.fixture
async def second_upstream():
    server = await FakeUpstream.start()
    yield server
    await server.close()


async def assert_nothing_leaks(srv, *upstreams: FakeUpstream, spent: float | None = None) -> None:
    """No admitted request, open upstream stream or budget hold is left; with `spent`, the
    tenant "default" has been charged exactly that (partial streams included)."""
    router = srv.server.router
    for _ in range(200):
        busy = [b.admitted for b in router.backends.values()] + [
            u.active_streams for u in upstreams
        ]
        if not any(busy):
            break
        await asyncio.sleep(0.01)
    assert [b.admitted for b in router.backends.values()] == [0] * len(router.backends)
    assert all(u.active_streams == 0 for u in upstreams)
    budget = router.pipeline.policies.get("budget")
    assert budget is None or budget.store.held_count() == 0
    if spent is not None:
        (a,) = budget._applicable("default")
        left = budget.store.available(a.key, a.spec.limit_usd, a.spec.window)
        assert a.spec.limit_usd - left == pytest.approx(spent, rel=1e-6, abs=1e-12)


async def test_generate_reaches_the_real_llamacpp_server(start_server, llamacpp_server):
    """Generate through the router streams real text from llama.cpp's server with exact counts."""
    config = {
        "backends": {
            "gpu": http_backend(
                llamacpp_server.base_url,
                0.2,
                model="smollm2",
                timeouts={"first_token_s": 120, "between_tokens_s": 120},
            )
        }
    }
    srv = await start_server(config)
    decisions, deltas, usage = await collect(srv.stub.Generate(request(max_tokens=12)))
    assert decisions[0].backend == "gpu" and decisions[0].tier == pb.CLOUD_GPU
    assert "".join(deltas).strip() and 0 < len(deltas) <= usage.completion_tokens
    assert usage.prompt_tokens > 0 and usage.backends_tried == ["gpu"]
    assert usage.cost_usd == pytest.approx((usage.prompt_tokens + usage.completion_tokens) * 0.2e-6)
    await assert_nothing_leaks(srv)


@pytest.mark.parametrize(
    "fault",
    [
        Script(mode="status", status=500),
        Script(mode="hangup"),
        Script(mode="hang"),
        Script(mode="malformed"),
        Script(mode="status", status=503, retry_after="1"),
    ],
    ids=["500", "hangup", "no-first-token", "malformed", "503"],
)
async def test_failure_before_the_first_token_falls_back(
    start_server, upstream, second_upstream, fault
):
    """A backend failing before its first token is replaced by the next-best one."""
    srv = await start_server(fleet(upstream.base_url, second_upstream.base_url))
    upstream.script(fault)
    decisions, deltas, usage = await collect(srv.stub.Generate(request(max_tokens=5)))
    assert [d.backend for d in decisions] == ["primary", "secondary"]
    assert decisions[1].candidates[0].rejected_by == "fallback"
    assert usage.backends_tried == ["primary", "secondary"] and usage.backend == "secondary"
    assert "".join(deltas) == "t0 t1 t2 t3 t4 "
    await assert_nothing_leaks(srv, upstream, second_upstream)


async def test_refused_connections_fall_back(start_server, upstream, second_upstream):
    """A backend that refuses connections is skipped for the next one."""
    srv = await start_server(fleet(upstream.base_url, second_upstream.base_url))
    await upstream.refuse()
    _, deltas, usage = await collect(srv.stub.Generate(request(max_tokens=5)))
    assert usage.backends_tried == ["primary", "secondary"] and "".join(deltas) == "t0 t1 t2 t3 t4 "


async def test_429_cools_the_backend_down_for_retry_after(start_server, upstream, second_upstream):
    """A 429 with Retry-After keeps the backend out of placement, visibly, for that long."""
    srv = await start_server(fleet(upstream.base_url, second_upstream.base_url))
    upstream.script(Script(mode="status", status=429, retry_after="30"))
    _, _, usage = await collect(srv.stub.Generate(request(max_tokens=2)))
    assert usage.backend == "secondary"
    d = await srv.stub.Route(request())
    primary = next(c for c in d.candidates if c.backend == "primary")
    assert d.backend == "secondary" and primary.rejected_by == "health"
    assert "cooling down 30 s" in primary.reason
    health = {
        b.name: b.health for b in (await srv.stub.ListBackends(pb.ListBackendsRequest())).backends
    }
    assert health == {"primary": pb.EJECTED, "secondary": pb.HEALTHY}


async def test_five_failures_eject_and_the_ejection_expires(
    start_server, upstream, second_upstream
):
    """Five consecutive failures eject a backend (reason shown), and it returns when it expires."""
    srv = await start_server(
        fleet(upstream.base_url, second_upstream.base_url, base_ejection_s=0.5)
    )
    upstream.script(*[Script(mode="status", status=500)] * 5)
    for _ in range(5):
        _, _, usage = await collect(srv.stub.Generate(request(max_tokens=1)))
        assert usage.backend == "secondary"
    d = await srv.stub.Route(request())
    primary = next(c for c in d.candidates if c.backend == "primary")
    assert primary.rejected_by == "health" and "after 5 consecutive failures" in primary.reason
    await asyncio.sleep(0.6)
    assert (await srv.stub.Route(request())).backend == "primary"
    await assert_nothing_leaks(srv, upstream, second_upstream)


async def test_failure_after_the_first_token_is_unavailable_not_truncation(
    start_server, upstream, second_upstream
):
    """A stream that breaks after tokens ends with UNAVAILABLE and a message, never silently."""
    srv = await start_server(fleet(upstream.base_url, second_upstream.base_url))
    charged = 0.0
    for fault in (Script(mode="close", after=2, tokens=5), Script(mode="stall", after=2, tokens=5)):
        upstream.script(fault)
        call = srv.stub.Generate(request(max_tokens=5))
        deltas = []
        with pytest.raises(grpc.aio.AioRpcError) as err:
            while (msg := await call.read()) is not grpc.aio.EOF:
                if msg.HasField("delta"):
                    deltas.append(msg.delta.text)
        assert "".join(deltas) == "t0 t1 "
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "output is incomplete" in err.value.details()
        # The 2 tokens streamed are charged with the prompt (on primary, $0.1 per Mtok).
        hello = Request("r", "t", (ChatMessage("user", "Say hello."),), 1, 0.0)
        charged += (prompt_tokens_estimate(hello) + 2) * 0.1e-6
        await assert_nothing_leaks(srv, upstream, second_upstream, spent=charged)


async def test_restricted_never_falls_back_to_a_third_party(
    start_server, upstream, second_upstream
):
    """When the self-hosted backend fails, a RESTRICTED request fails rather than go third-party."""
    config = fleet(upstream.base_url, second_upstream.base_url)
    config["backends"]["secondary"]["tier"] = "remote_api"
    srv = await start_server(config)
    upstream.script(Script(mode="status", status=500))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await collect(srv.stub.Generate(request(max_tokens=2, privacy=pb.RESTRICTED)))
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "secondary excluded by privacy" in err.value.details()
    assert [r.path for r in second_upstream.requests if r.method == "POST"] == []
    await assert_nothing_leaks(srv, upstream, second_upstream)


async def test_a_tool_request_never_falls_back_to_a_backend_without_tools(
    start_server, upstream, second_upstream
):
    """A tool request whose backend fails goes nowhere rather than to one lacking `tools`."""
    config = fleet(upstream.base_url, second_upstream.base_url)
    config["backends"]["secondary"]["features"] = ["streaming"]
    srv = await start_server(config)
    upstream.script(Script(mode="status", status=500))
    tools = [pb.Tool(name="lookup", parameters='{"type": "object"}')]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await collect(srv.stub.Generate(request(max_tokens=2, tools=tools)))
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "secondary excluded by capability: lacks feature tools" in err.value.details()
    assert [r.path for r in second_upstream.requests if r.method == "POST"] == []
    await assert_nothing_leaks(srv, upstream, second_upstream)


async def test_deadline_frees_everything(start_server, upstream, second_upstream):
    """An expired gRPC deadline ends the call and frees slots, budget holds and streams."""
    config = fleet(upstream.base_url, second_upstream.base_url)
    config["backends"]["primary"]["timeouts"] = {"first_token_s": 30}
    srv = await start_server(config)
    upstream.script(Script(mode="hang"))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await collect(srv.stub.Generate(request(max_tokens=2), timeout=0.5))
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    await assert_nothing_leaks(srv, upstream, second_upstream, spent=0.0)


async def test_anthropic_backend_streams_through_the_router(start_server, upstream, monkeypatch):
    """A remote Anthropic backend serves through the router with usage from its events."""
    monkeypatch.setenv("TEST_ANTHROPIC_KEY", "sk-ant-test")
    config = {
        "backends": {
            "claude": {
                "type": "anthropic",
                "base_url": upstream.root_url,
                "api_key_env": "TEST_ANTHROPIC_KEY",
                "model": "claude",
                "context_window": 100000,
            }
        }
    }
    srv = await start_server(config)
    upstream.default = Script(tokens=4)
    decisions, deltas, usage = await collect(srv.stub.Generate(request(max_tokens=4)))
    assert decisions[0].tier == pb.REMOTE_API and "".join(deltas) == "t0 t1 t2 t3 "
    assert usage.prompt_tokens == 11 and usage.completion_tokens == 4
    assert upstream.requests[-1].headers.get("x-api-key") == "sk-ant-test"


async def test_killing_the_llamacpp_server_mid_stream(start_server, second_upstream):
    """Killing the cloud server mid-stream gives the client a clean error; the next request falls
    back to the other backend."""
    with start_llamacpp_server() as llama:
        config = fleet(llama.base_url, second_upstream.base_url)
        config["backends"]["primary"]["timeouts"] = {"first_token_s": 120, "between_tokens_s": 120}
        srv = await start_server(config)
        call = srv.stub.Generate(request("Tell me a long story.", max_tokens=200))
        assert (await call.read()).decision.backend == "primary"
        assert (await call.read()).HasField("delta")
        llama.process.kill()
        with pytest.raises(grpc.aio.AioRpcError) as err:
            while await call.read() is not grpc.aio.EOF:
                pass
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "backend primary" in err.value.details()
        _, deltas, usage = await collect(srv.stub.Generate(request(max_tokens=5)))
        assert usage.backends_tried == ["primary", "secondary"]
        assert "".join(deltas) == "t0 t1 t2 t3 t4 "
        await assert_nothing_leaks(srv, second_upstream)


async def test_closing_the_stream_right_after_the_decision_releases_everything(
    start_server, upstream, second_upstream
):
    """A client that leaves after reading only the decision leaves no slot or budget hold."""
    srv = await start_server(fleet(upstream.base_url, second_upstream.base_url))
    upstream.script(Script(tokens=5, delay_s=0.5))
    router = srv.server.router
    engine_stream = router.generate(request_from_pb(request(), router.config))
    decision = await anext(engine_stream)
    assert decision.backend == "primary" and router.backends["primary"].admitted == 1
    await engine_stream.aclose()
    await assert_nothing_leaks(srv, upstream, second_upstream, spent=0.0)


@pytest.mark.parametrize("retry_after", ["inf", "1e12", "Fri, 01 Jan 2100 00:00:00 GMT"])
async def test_a_huge_retry_after_cools_down_for_max_ejection_at_most(
    start_server, upstream, second_upstream, retry_after
):
    """A 429 asking for inf s, 1e12 s or until 2100 keeps the backend out max_ejection_s at most."""
    config = fleet(upstream.base_url, second_upstream.base_url, max_ejection_s=60)
    srv = await start_server(config)
    upstream.script(Script(mode="status", status=429, retry_after=retry_after))
    _, _, usage = await collect(srv.stub.Generate(request(max_tokens=2)))
    assert usage.backends_tried == ["primary", "secondary"]
    d = await srv.stub.Route(request())
    primary = next(c for c in d.candidates if c.backend == "primary")
    assert primary.rejected_by == "health" and "cooling down 60 s more" in primary.reason
    await assert_nothing_leaks(srv, upstream, second_upstream)


async def test_a_one_backend_fleet_does_not_go_out_on_a_429(start_server, upstream):
    """The only backend answering 429 with Retry-After: inf fails that request, not later ones."""
    srv = await start_server({"backends": {"only": http_backend(upstream.base_url, 0.1)}})
    upstream.script(Script(mode="status", status=429, retry_after="inf"))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await collect(srv.stub.Generate(request(max_tokens=2)))
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE and "HTTP 429" in err.value.details()
    _, deltas, usage = await collect(srv.stub.Generate(request(max_tokens=2)))
    assert usage.backend == "only" and "".join(deltas) == "t0 t1 t2 t3 t4 "
    await assert_nothing_leaks(srv, upstream)


async def test_the_only_trusted_backend_stays_in_for_restricted_requests(
    start_server, upstream, second_upstream
):
    """A 429 does not take out the only self-hosted backend while a third-party one remains."""
    config = fleet(upstream.base_url, second_upstream.base_url)
    config["backends"]["secondary"]["tier"] = "remote_api"
    srv = await start_server(config)
    upstream.script(Script(mode="status", status=429, retry_after="1e12"))
    _, _, usage = await collect(srv.stub.Generate(request(max_tokens=2)))
    assert usage.backends_tried == ["primary", "secondary"]
    _, deltas, usage = await collect(
        srv.stub.Generate(request(max_tokens=2, privacy=pb.RESTRICTED))
    )
    assert usage.backend == "primary" and "".join(deltas) == "t0 t1 t2 t3 t4 "
    await assert_nothing_leaks(srv, upstream, second_upstream)
