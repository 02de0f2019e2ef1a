"""The Python client library, async and sync, against a real server."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from router.client import AsyncRouterClient, GenerateResult, RouterClient, build_request


def test_build_request_maps_prompt_system_and_privacy():
    """A prompt string becomes a user message; system goes first; privacy names map to the enum."""
    req = build_request("hi", system="be brief", privacy="confidential", max_tokens=5, model=None)
    assert [(m.role, m.content) for m in req.messages] == [("system", "be brief"), ("user", "hi")]
    assert req.privacy == 3 and req.max_tokens == 5 and not req.HasField("temperature")


async def test_async_client_streams_text_then_result(start_server):
    """AsyncRouterClient.generate yields str chunks and ends with a GenerateResult."""
    srv = await start_server()
    async with AsyncRouterClient(srv.target) as client:
        items = [i async for i in client.generate("Hello!", max_tokens=6, tenant="t1")]
        decision = await client.route("Hello!")
        backends = await client.backends()
    *chunks, result = items
    assert all(isinstance(c, str) for c in chunks) and isinstance(result, GenerateResult)
    assert result.text == "".join(chunks) and 0 < len(chunks) <= result.usage.completion_tokens
    assert result.decision.backend == decision.backend == "edge-smollm2"
    assert [b.name for b in backends] == ["edge-smollm2"]


async def test_async_client_stopping_early_cancels_generation(start_server):
    """Breaking out of generate() cancels the call and frees the model slot."""
    srv = await start_server()
    backend = srv.server.router.backends["edge-smollm2"]
    async with AsyncRouterClient(srv.target) as client:
        stream = client.generate("Write an essay.", max_tokens=400)
        async for item in stream:
            if isinstance(item, str):
                break
        await stream.aclose()
    for _ in range(500):
        if backend.load().in_flight == 0:
            break
        await asyncio.sleep(0.01)
    assert backend.load().in_flight == 0


async def test_sync_client_generates_and_reports_errors(start_server):
    """RouterClient works from a thread and surfaces server errors as grpc.RpcError."""
    srv = await start_server()

    def run() -> tuple[list, grpc.RpcError]:
        with RouterClient(srv.target, timeout=60) as client:
            items = list(client.generate("Hi", max_tokens=4))
            with pytest.raises(grpc.RpcError) as err:
                client.route("Hi", profile="missing")
            return items, err.value

    items, err = await asyncio.to_thread(run)
    assert (
        isinstance(items[-1], GenerateResult)
        and 0 < len(items) - 1 <= items[-1].usage.completion_tokens
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "profile" in err.details()


def test_channel_credentials_need_cert_and_key_together(tmp_path):
    """No option: plaintext; a client certificate without its key (or the reverse) is refused."""
    from router.client import channel_credentials

    assert channel_credentials() is None
    assert channel_credentials(tls=True) is not None  # the system's CAs
    with pytest.raises(ValueError, match="cert_file and key_file"):
        channel_credentials(cert_file=str(tmp_path / "c.pem"))
    with pytest.raises(ValueError, match="cert_file and key_file"):
        RouterClient("127.0.0.1:1", key_file=str(tmp_path / "k.pem"))


async def test_sync_client_sends_its_api_key(tmp_path):
    """RouterClient(api_key=...) authenticates Route and ListBackends on a keyed server."""
    import yaml

    from router.api import keys
    from router.api.server import RouterServer
    from router.config import parse_config

    path = tmp_path / "keys.yaml"
    _, key = keys.create_key(path, "acme")
    data = {
        "server": {"tenant_keys_file": str(path)},
        "backends": {"b": {"type": "scripted", "model": "m"}},
    }
    server = await RouterServer.start(parse_config(yaml.safe_dump(data), "<t>"), "127.0.0.1", 0)

    def run() -> tuple[str, grpc.StatusCode]:
        target = f"127.0.0.1:{server.port}"
        with RouterClient(target, timeout=10, api_key=key) as client:
            backend = client.route("hi", tenant="acme").backend
            assert [b.name for b in client.backends()] == ["b"]
        with RouterClient(target, timeout=10) as anonymous, pytest.raises(grpc.RpcError) as err:
            anonymous.route("hi")
        return backend, err.value.code()

    try:
        assert await asyncio.to_thread(run) == ("b", grpc.StatusCode.UNAUTHENTICATED)
    finally:
        await server.stop(grace=0)
