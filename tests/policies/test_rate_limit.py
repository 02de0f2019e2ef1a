"""rate_limit policy: requests and tokens per window per tenant and per API key,
reserve/settle/release, batch constraints, and a real server answering the request past the
limit with RESOURCE_EXHAUSTED."""

from __future__ import annotations

import grpc
import httpx
import pytest

from policies.rate_limit import create
from router.core.budgets import MemoryBudgetStore
from router.core.errors import ResourceExhausted
from router.core.framework import SideLimit
from router.core.handle import PluginHandle
from router.core.types import Usage
from tests.conftest import backend_view, context, request
from tests.policies.test_budget import Clock
from tests.router.http.conftest import scripted_config

GPU = backend_view("gpu")


def make(clock: Clock | None = None, **limit):
    store = MemoryBudgetStore(clock or Clock())
    spec = {"tenant": "acme", **limit}
    return create("rate", {"limits": [spec]}, PluginHandle(rate_store=store)), store


def test_requests_per_minute_admit_exactly_the_limit():
    """Three requests a minute: three reserve, the filter then names the limit, and a release
    gives its request back."""
    policy, store = make(requests_per_minute=3)
    ctx = context(tenant="acme")
    held = [policy.reserve(ctx, GPU) for _ in range(3)]
    assert (
        policy.filter(ctx, GPU) == "rate limit acme: requests per 1m: 0 left, the request needs 1"
    )
    with pytest.raises(ResourceExhausted, match="requests per 1m"):
        policy.reserve(ctx, GPU)
    held[0].release()
    assert policy.filter(ctx, GPU) is None
    assert store.held_count() == 2


def test_tokens_are_held_at_worst_and_settled_at_the_real_count():
    """The token hold is prompt bound + max_tokens; settling charges prompt + completion."""
    policy, store = make(tokens_per_minute=1000)
    ctx = context(tenant="acme", prompt_tokens=100, max_tokens=300)
    worst = ctx.prompt_bound_on("gpu") + 300
    hold = policy.reserve(ctx, GPU)
    key = "rate:0:acme:tokens:1m"
    assert store.available(key, 1000, 60) == pytest.approx(1000 - worst)
    hold.settle(Usage(prompt_tokens=90, completion_tokens=10))
    assert store.available(key, 1000, 60) == pytest.approx(900)


def test_the_window_resets_and_other_tenants_are_not_bound():
    """A fixed one-minute window: the next minute starts afresh; another tenant is free."""
    clock = Clock()
    policy, _ = make(clock, requests_per_minute=1)
    policy.reserve(context(tenant="acme"), GPU).settle(Usage())
    assert policy.filter(context(tenant="acme"), GPU) is not None
    assert policy.filter(context(tenant="other"), GPU) is None
    clock.now += 60
    assert policy.filter(context(tenant="acme"), GPU) is None


def test_a_batch_of_one_tenant_shares_what_is_left():
    """Batch constraints: one side limit per account, each request weighing one request."""
    policy, _ = make(requests_per_minute=2)
    batch = [context(tenant="acme"), context(tenant="acme")]
    (limit,) = policy.constraints(batch, [GPU])
    assert isinstance(limit, SideLimit) and limit.limit == 2
    assert limit.weights == {(0, "gpu"): 1.0, (1, "gpu"): 1.0}


def test_a_key_limit_counts_each_key_of_the_tenant_on_its_own():
    """key "*": each API key has its own window, named in the reason; a call without a key
    (tenant keys off) is not bound by a key limit; a key id limits only that key."""
    policy, _ = make(key="*", requests_per_minute=1)
    a, b = context(tenant="acme", api_key="0123456789ab"), context(tenant="acme", api_key="b" * 12)
    policy.reserve(a, GPU).settle(Usage())
    assert policy.filter(a, GPU) == (
        "rate limit acme key 0123456789ab: requests per 1m: 0 left, the request needs 1"
    )
    assert policy.filter(b, GPU) is None
    assert policy.reserve(context(tenant="acme"), GPU) is None
    one, _ = make(key="0123456789ab", requests_per_minute=0)
    assert one.filter(a, GPU) is not None and one.filter(b, GPU) is None


@pytest.mark.parametrize(
    "spec", [{"requests_per_minute": -1}, {"window": "soon"}, {"key": "trk_0123456789ab"}]
)
def test_bad_parameters_are_rejected(spec):
    """A negative rate, an unreadable window or a key that is not "*" or a key id is a
    validation error."""
    with pytest.raises(Exception, match=r"requests_per_minute|duration|key id"):
        make(**spec)


def limited_config() -> dict:
    config = scripted_config()
    config["policies"]["rate"] = {
        "type": "rate-limit",
        "parameters": {"limits": [{"tenant": "*", "requests_per_minute": 2}]},
    }
    config["profiles"]["default"]["policies"].append({"policy": "rate"})
    return config


async def test_a_server_refuses_the_request_past_the_limit(start_http) -> None:
    """Through a real server: two Generates a minute pass, the third gets RESOURCE_EXHAUSTED
    naming the limit over gRPC, and 429 with Retry-After over HTTP."""
    running = await start_http(limited_config())
    channel = grpc.aio.insecure_channel(running.grpc_target)
    from router.api import router_pb2_grpc as pb_grpc

    stub = pb_grpc.TokenRouterStub(channel)
    for _ in range(2):
        [r async for r in stub.Generate(request(tenant="acme"))]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        [r async for r in stub.Generate(request(tenant="acme"))]
    await channel.close()
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "rate limit acme: requests per 1m" in err.value.details()
    body = {"model": "auto", "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]}
    async with httpx.AsyncClient(base_url=running.base_url) as client:
        response = await client.post(
            "/v1/chat/completions", json=body, headers={"x-tokenrouter-tenant": "acme"}
        )
    assert response.status_code == 429 and response.headers["retry-after"]
    assert "rate limit acme" in response.json()["error"]["message"]


async def test_a_key_limit_counts_the_key_a_call_authenticated_with(start_http, tmp_path) -> None:
    """Through a real server with tenant keys: one request a minute per key, so a key's second
    call is refused naming that key over gRPC and HTTP while the tenant's other key still
    passes."""
    from router.api import keys
    from router.api import router_pb2_grpc as pb_grpc

    path = tmp_path / "keys.yaml"
    (first, key1), (_, key2) = keys.create_key(path, "acme"), keys.create_key(path, "acme")
    config = scripted_config()
    config["server"]["tenant_keys_file"] = str(path)
    config["policies"]["rate"] = {
        "type": "rate-limit",
        "parameters": {"limits": [{"key": "*", "requests_per_minute": 1}]},
    }
    config["profiles"]["default"]["policies"].append({"policy": "rate"})
    running = await start_http(config)
    channel = grpc.aio.insecure_channel(running.grpc_target)
    stub = pb_grpc.TokenRouterStub(channel)

    async def generate(key: str) -> None:
        metadata = (("authorization", f"Bearer {key}"),)
        [r async for r in stub.Generate(request(), metadata=metadata)]

    await generate(key1)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await generate(key1)
    await generate(key2)
    await channel.close()
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert f"rate limit acme key {first.id}: requests per 1m" in err.value.details()
    body = {"model": "auto", "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]}
    async with httpx.AsyncClient(base_url=running.base_url) as client:
        response = await client.post(
            "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key1}"}
        )
    assert response.status_code == 429
    assert f"key {first.id}" in response.json()["error"]["message"]
