"""Integration tests: a real gRPC server on a free port serving the real SmolLM2 model."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from router.api import router_pb2 as pb
from tests.conftest import edge_config, request


def _has_ipv6_loopback() -> bool:
    import socket

    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


# Tests on ::1 run wherever the machine has an IPv6 loopback (this one does: checked at start).
ipv6_loopback = pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback here")


async def collect(call) -> tuple[pb.RouteDecision, list[str], pb.Usage]:
    decision, deltas, usage = None, [], None
    while (msg := await call.read()) is not grpc.aio.EOF:
        kind = msg.WhichOneof("event")
        if kind == "decision":
            assert decision is None and not deltas, "the decision comes first, once"
            decision = msg.decision
        elif kind == "delta":
            deltas.append(msg.delta.text)
        else:
            usage = msg.usage
    return decision, deltas, usage


async def test_generate_streams_real_model_text_with_exact_usage(start_server, model_path):
    """Generate streams decision, text and usage, matching llama-cpp-python's own greedy output."""
    from llama_cpp import Llama

    srv = await start_server()
    req = request("What is the capital of France?", max_tokens=16, temperature=0.0)
    decision, deltas, usage = await collect(srv.stub.Generate(req))
    assert decision.backend == "edge-smollm2" and decision.tier == pb.EDGE
    assert decision.solver and decision.candidates[0].feasible
    text = "".join(deltas)
    assert text.strip()
    assert 0 < len(deltas) <= usage.completion_tokens  # tokens that piled up share a delta
    assert usage.backend == "edge-smollm2" and usage.finish_reason in ("stop", "length")
    assert usage.ttft_ms > 0 and usage.total_ms >= usage.ttft_ms
    direct = Llama(model_path=model_path, n_ctx=1024, n_threads=2, verbose=False)
    out = await asyncio.to_thread(
        direct.create_chat_completion,
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=16,
        temperature=0.0,
    )
    assert text == out["choices"][0]["message"]["content"]
    assert usage.completion_tokens == out["usage"]["completion_tokens"]
    assert usage.prompt_tokens == out["usage"]["prompt_tokens"]
    direct.close()


async def test_health_is_serving_and_reflection_lists_the_service(start_server):
    """The standard health service says SERVING and reflection lists tokenrouter.v1.TokenRouter."""
    srv = await start_server()
    health = health_pb2_grpc.HealthStub(srv.channel)
    for service in ("", "tokenrouter.v1.TokenRouter"):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    stub = reflection_pb2_grpc.ServerReflectionStub(srv.channel)
    call = stub.ServerReflectionInfo()
    await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
    reply = await call.read()
    await call.done_writing()
    names = {s.name for s in reply.list_services_response.service}
    assert "tokenrouter.v1.TokenRouter" in names and "grpc.health.v1.Health" in names


async def test_list_backends_reports_tier_models_and_price(start_server):
    """ListBackends returns the edge backend with its tier, models, health and context window."""
    srv = await start_server()
    reply = await srv.stub.ListBackends(pb.ListBackendsRequest())
    assert reply.config_version == srv.server.router.loaded.version
    assert reply.config_loaded_at_unix > 1.7e9
    (b,) = reply.backends
    assert b.name == "edge-smollm2" and b.tier == pb.EDGE and b.health == pb.HEALTHY
    assert list(b.models) == ["smollm2"] and b.context_window == 1024 and b.trust == "edge"


BAD_INPUTS = [
    (pb.GenerateRequest(max_tokens=4), "messages"),
    (pb.GenerateRequest(messages=[pb.Message(role="wizard", content="hi")]), "messages[0].role"),
    (pb.GenerateRequest(messages=[pb.Message(role="user", content="")]), "messages"),
    (request(max_tokens=-1), "max_tokens"),
    (request(max_tokens=10_000_000), "max_tokens"),
    (request(max_tokens=2000), "max_tokens"),  # under the limit but above every context window
    (request(profile="nope"), "profile"),
    (request(model="gpt-9"), "model"),
    (request("word " * 3000), "messages"),
    (request(temperature=5.0), "temperature"),
    (request(latency_slo_ms=-5), "latency_slo_ms"),
    (request(max_cost_usd=-1.0), "max_cost_usd"),
]


@pytest.mark.parametrize("method", ["Generate", "Route"])
async def test_bad_input_is_invalid_argument_naming_the_field(start_server, method):
    """Each bad request gets INVALID_ARGUMENT naming its field, and the server keeps serving."""
    srv = await start_server()
    rpc = getattr(srv.stub, method)
    for bad, field in BAD_INPUTS:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            result = rpc(bad)
            if method == "Generate":
                await collect(result)
            else:
                await result
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, bad
        assert err.value.details().startswith(f"{field}:"), err.value.details()
    decision = await srv.stub.Route(request())
    assert decision.backend == "edge-smollm2"


async def test_route_returns_the_decision_with_candidates(start_server):
    """Route decides without generating and explains every candidate."""
    srv = await start_server()
    d = await srv.stub.Route(request(request_id="r-1", tenant="acme"))
    assert d.backend == "edge-smollm2" and d.model == "smollm2" and d.request_id == "r-1"
    assert d.profile == "default" and d.decision_us >= 0
    assert [c.backend for c in d.candidates] == ["edge-smollm2"]


async def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def test_cancelling_mid_stream_frees_the_model_slot(start_server):
    """A client cancel stops generation and frees the only replica for the next request."""
    srv = await start_server(edge_config(replicas=1, max_queue=0))
    backend = srv.server.router.backends["edge-smollm2"]
    call = srv.stub.Generate(request("Tell me a long story.", max_tokens=400))
    for _ in range(4):  # the decision and three deltas
        await call.read()
    call.cancel()
    await wait_for(lambda: backend.load().in_flight == 0)
    _, deltas_after, usage = await collect(srv.stub.Generate(request(max_tokens=4)))
    assert usage.completion_tokens > 0 and deltas_after


async def test_requests_beyond_replicas_queue_and_all_complete(start_server):
    """More concurrent requests than replicas wait in the queue and every one completes."""
    srv = await start_server(edge_config(replicas=1, max_queue=8))
    results = await asyncio.gather(
        *(collect(srv.stub.Generate(request(max_tokens=6))) for _ in range(4))
    )
    assert all(usage.completion_tokens > 0 for _, _, usage in results)


async def test_requests_beyond_max_queue_are_refused_at_once(start_server):
    """With the replica busy and the queue full, the next request gets RESOURCE_EXHAUSTED."""
    srv = await start_server(edge_config(replicas=1, max_queue=1))
    backend = srv.server.router.backends["edge-smollm2"]
    running = asyncio.ensure_future(collect(srv.stub.Generate(request(max_tokens=60))))
    await wait_for(lambda: backend.load().in_flight == 1)
    queued = asyncio.ensure_future(collect(srv.stub.Generate(request(max_tokens=4))))
    await wait_for(lambda: backend.load().queued == 1)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await collect(srv.stub.Generate(request(max_tokens=4)))
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "max_queue 1" in err.value.details()
    for fut in (running, queued):
        assert (await fut)[2].completion_tokens > 0


async def test_graceful_shutdown_lets_in_flight_stream_finish(start_server):
    """On stop, watchers see NOT_SERVING, new calls are refused, the running stream completes."""
    srv = await start_server()
    health = health_pb2_grpc.HealthStub(srv.channel)
    watch = health.Watch(health_pb2.HealthCheckRequest(service=""))
    assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
    call = srv.stub.Generate(request("Count to twenty.", max_tokens=40, temperature=0.0))
    assert (await call.read()).HasField("decision")
    assert (await call.read()).HasField("delta")
    stopping = asyncio.ensure_future(srv.server.stop(grace=30))
    assert (await watch.read()).status == health_pb2.HealthCheckResponse.NOT_SERVING
    assert await watch.read() is grpc.aio.EOF  # watchers do not hold the shutdown
    with pytest.raises(grpc.aio.AioRpcError):
        await srv.stub.Route(request(), timeout=2)
    _, _, usage = await collect(call)
    assert usage.completion_tokens == 40 or usage.finish_reason == "stop"
    await stopping


async def test_request_log_records_each_generate_without_content(start_server, tmp_path):
    """With server.request_log set, each Generate appends one JSON line with no message content."""
    import json

    config = edge_config()
    config["server"]["request_log"] = str(tmp_path / "requests.jsonl")
    srv = await start_server(config)
    secret = "my secret prompt text"
    _, _, usage = await collect(srv.stub.Generate(request(secret, tenant="acme", max_tokens=4)))
    await srv.server.stop(grace=0)
    raw = (tmp_path / "requests.jsonl").read_text()
    (line,) = [json.loads(x) for x in raw.splitlines()]
    assert secret not in raw
    assert line["tenant"] == "acme" and line["completion_tokens"] == usage.completion_tokens
    assert line["prompt_tokens"] == usage.prompt_tokens and line["max_tokens"] == 4
    assert line["status"] == "OK" and line["privacy"] == "UNSPECIFIED" and line["ts"] > 1.7e9


SCRIPTED = {"backends": {"b": {"type": "scripted", "model": "m", "text": "a b c"}}}


async def start_on(host: str, data: dict | None = None, **kwargs):
    from router.api.server import RouterServer
    from tests.conftest import loaded

    return await RouterServer.start(loaded(data or SCRIPTED), host=host, port=0, **kwargs)


@ipv6_loopback
@pytest.mark.parametrize("host", ["::1", "[::1]"])
async def test_serves_on_the_ipv6_loopback(host):
    """`--host ::1` binds [::1]:port (it used to build the invalid address ::1:port)."""
    server = await start_on(host)
    try:
        async with grpc.aio.insecure_channel(f"[::1]:{server.port}") as channel:
            from router.api import router_pb2_grpc as pb_grpc

            decision = await pb_grpc.TokenRouterStub(channel).Route(request(), timeout=10)
        assert decision.backend == "b"
    finally:
        await server.stop(grace=0)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.7", "router.example.com"])
async def test_non_loopback_bind_is_refused_without_admin_token_tls_and_keys(host, monkeypatch):
    """A non-loopback bind needs an admin token; then TLS and tenant keys, or `insecure`.

    Refusals happen before anything binds."""
    from router.api.server import UnsafeExposure, check_exposure
    from router.config import ServerConfig

    monkeypatch.delenv("TOKENROUTER_ADMIN_TOKEN", raising=False)
    with pytest.raises(UnsafeExposure, match="TOKENROUTER_ADMIN_TOKEN"):
        await start_on(host)
    with pytest.raises(UnsafeExposure, match="TOKENROUTER_ADMIN_TOKEN"):
        await start_on(host, insecure=True)  # --insecure never waives the admin token
    monkeypatch.setenv("TOKENROUTER_ADMIN_TOKEN", "t0ken")
    with pytest.raises(UnsafeExposure, match=r"TLS \(server.tls\) and tenant keys .*--insecure"):
        await start_on(host)
    missing = check_exposure(host, ServerConfig(), insecure=True)
    assert missing == ["TLS (server.tls)", "tenant keys (server.tenant_keys_file)"]
    secured = ServerConfig(
        tls={"cert_file": "c.pem", "key_file": "k.pem"}, tenant_keys_file="keys.yaml"
    )
    assert check_exposure(host, secured) == []
    for local in ("127.0.0.1", "127.1.2.3", "::1", "localhost", "unix:/run/tr.sock"):
        monkeypatch.delenv("TOKENROUTER_ADMIN_TOKEN")
        assert check_exposure(local, ServerConfig()) == []
        monkeypatch.setenv("TOKENROUTER_ADMIN_TOKEN", "t0ken")


async def test_message_over_the_receive_limit_names_the_setting(start_server):
    """A request larger than server.max_receive_message_bytes is refused naming that setting."""
    backend = {"type": "scripted", "model": "m", "context_window": 100_000}
    data = {"backends": {"b": backend}, "server": {"max_receive_message_bytes": 65536}}
    srv = await start_server(data)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await srv.stub.Route(request("x" * 100_000))
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "server.max_receive_message_bytes (65536)" in err.value.details()
    assert (await srv.stub.Route(request("x" * 60_000))).backend == "b"


async def test_undecodable_request_is_invalid_argument(start_server):
    """Bytes that are not a GenerateRequest (a non-UTF-8 string) get INVALID_ARGUMENT."""
    srv = await start_server(SCRIPTED)
    raw = srv.channel.unary_unary("/tokenrouter.v1.TokenRouter/Route")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await raw(b"\x12\x03\x0a\x01\xff")  # messages[0].role = b"\xff"
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "UTF-8" in err.value.details()


async def test_internal_error_answers_an_error_id_and_logs_the_details(start_server):
    """A bug's exception text goes to the log under an id; the client sees only the id."""
    from structlog.testing import capture_logs

    srv = await start_server(SCRIPTED)

    async def broken(_request):
        raise RuntimeError("secret internals /etc/passwd")

    srv.server.router.route = broken
    with capture_logs() as logs, pytest.raises(grpc.aio.AioRpcError) as err:
        await srv.stub.Route(request())
    assert err.value.code() == grpc.StatusCode.INTERNAL
    details = err.value.details()
    assert "secret" not in details and "RuntimeError" not in details
    (entry,) = [e for e in logs if e["event"] == "internal error"]
    assert details == f"internal error (id {entry['error_id']})"
    assert "secret internals" in str(entry["exc_info"])
