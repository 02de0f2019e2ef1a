"""The shared driver on a real server: failures before and after the first token, clients that
leave, and the decision in headers, on both faces."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from tests.fakes.fake_upstream import Script
from tests.router.http.conftest import scripted_config

CHAT = "/v1/chat/completions"
MESSAGES = "/v1/messages"


def body(stream: bool = True, **fields: Any) -> dict[str, Any]:
    return {
        "model": "auto",
        "max_tokens": 16,
        "messages": [{"role": "user", "content": "hi"}],
        "stream": stream,
        **fields,
    }


def upstream_config(base_url: str, **server: Any) -> dict[str, Any]:
    """One OpenAI-compatible backend `gpu` on the scripted fake upstream; no retries elsewhere."""
    spec = {"type": "openai", "model": "m", "base_url": base_url, "metrics": "none"}
    return {"server": {"grace_period_s": 1, **server}, "backends": {"gpu": spec}}


@pytest.mark.parametrize("path", [CHAT, MESSAGES])
async def test_a_failure_after_the_first_token_ends_the_stream_with_an_error_event(
    start_http, upstream, path
) -> None:
    """The upstream drops the connection after two tokens: the client gets them, then the face's
    error event naming the failure, and no normal end (no [DONE], no message_stop)."""
    running = await start_http(upstream_config(upstream.base_url))
    upstream.script(Script(mode="close", after=2))
    async with httpx.AsyncClient(base_url=running.base_url, timeout=30) as client:
        response = await client.post(path, json=body())
    assert response.status_code == 200
    text = response.text
    assert "t0" in text and "t1" in text
    if path == CHAT:
        events = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: {")]
        assert "error" in events[-1] and "incomplete" in events[-1]["error"]["message"]
        assert "[DONE]" not in text
    else:
        assert "event: error" in text and "message_stop" not in text
        assert text.rstrip().endswith("}") and '"type":"error"' in text.replace(" ", "")


@pytest.mark.parametrize("path", [CHAT, MESSAGES])
async def test_a_failure_before_the_first_token_is_an_http_error_status(
    start_http, upstream, path
) -> None:
    """Every attempt failing before any token gives 503 with the face's error object, not a 200
    stream; the upstream's Retry-After comes back."""
    running = await start_http(upstream_config(upstream.base_url))
    upstream.default = Script(mode="status", status=503, retry_after="7")
    async with httpx.AsyncClient(base_url=running.base_url, timeout=30) as client:
        response = await client.post(path, json=body())
    assert response.status_code == 503
    assert response.headers["retry-after"] == "7"
    error = response.json()["error"]
    assert "gpu" in error["message"]


@pytest.mark.parametrize("path", [CHAT, MESSAGES])
async def test_a_client_that_leaves_cancels_its_generation(start_http, path) -> None:
    """Closing the connection mid-stream stops the backend's generation (the scripted backend's
    running count falls back to 0) instead of producing tokens for nobody."""
    running = await start_http(scripted_config(" ".join(["w"] * 200), token_interval_ms=20))
    backend = running.server.router.backends["s"]
    client = httpx.AsyncClient(base_url=running.base_url, timeout=30)
    async with client, client.stream("POST", path, json=body(max_tokens=200)) as response:
        async for _ in response.aiter_bytes():
            break
        assert backend._running == 1
    for _ in range(100):
        if backend._running == 0:
            break
        await asyncio.sleep(0.02)
    assert backend._running == 0


@pytest.mark.parametrize("stream", [True, False])
async def test_the_decision_comes_back_in_headers(start_http, stream) -> None:
    """Backend, tier, solver, config version and request id are response headers."""
    running = await start_http(scripted_config())
    async with httpx.AsyncClient(base_url=running.base_url, timeout=30) as client:
        response = await client.post(
            CHAT, json=body(stream=stream), headers={"x-request-id": "req-42"}
        )
    assert response.status_code == 200
    h = response.headers
    assert h["x-tokenrouter-backend"] == "s" and h["x-tokenrouter-tier"] == "cloud_gpu"
    assert h["x-tokenrouter-solver"] and h["x-tokenrouter-request-id"] == "req-42"
    assert h["x-tokenrouter-config-version"] == running.server.router.loaded.version


async def test_routing_headers_and_body_fields_reach_the_decision(start_http) -> None:
    """x-tokenrouter-privacy and a `profile` body field are honoured; a stricter header privacy
    is not lowered by the body's."""
    config = scripted_config()
    config["profiles"]["fast"] = config["profiles"]["default"]
    running = await start_http(config)
    async with httpx.AsyncClient(base_url=running.base_url, timeout=30) as client:
        response = await client.post(
            CHAT,
            json=body(stream=False, profile="fast", privacy="public"),
            headers={"x-tokenrouter-privacy": "confidential"},
        )
    assert response.status_code == 200, response.text
    fields = response.json()["tokenrouter"]
    assert fields["profile"] == "fast" and fields["privacy"] == "confidential"


@pytest.mark.parametrize(
    ("headers", "extra", "field"),
    [
        ({"x-tokenrouter-privacy": "secret"}, {}, "x-tokenrouter-privacy"),
        ({}, {"latency_slo_ms": "soon"}, "latency_slo_ms"),
        ({}, {"max_cost_usd": -1}, "max_cost_usd"),
        ({}, {"profile": "nope"}, "profile"),
    ],
)
async def test_bad_routing_fields_are_400_naming_the_field(
    start_http, headers, extra, field
) -> None:
    """A routing header or body field that does not parse is a 400 whose error names it."""
    running = await start_http(scripted_config())
    async with httpx.AsyncClient(base_url=running.base_url, timeout=30) as client:
        response = await client.post(CHAT, json=body(stream=False, **extra), headers=headers)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == field and field in error["message"]


@pytest.mark.parametrize("path", [CHAT, MESSAGES])
async def test_bodies_over_the_limit_and_bad_json_are_refused(start_http, path) -> None:
    """A Content-Length over server.max_receive_message_bytes is a 413 naming the setting; a body
    that is not JSON is a 400 naming `body`."""
    config = scripted_config()
    config["server"]["max_receive_message_bytes"] = 4096
    running = await start_http(config)
    async with httpx.AsyncClient(base_url=running.base_url, timeout=30) as client:
        big = await client.post(path, content=b"{" + b" " * 5000 + b"}")
        bad = await client.post(path, content=b"{not json")
    assert big.status_code == 413 and "max_receive_message_bytes" in big.text
    assert bad.status_code == 400 and "body" in bad.text


async def test_naming_another_tenant_than_the_keys_is_403(start_http, tmp_path) -> None:
    """With tenant keys on, a chat completion whose x-tokenrouter-tenant is not the key's tenant
    is a 403 permission_error; without a key it is a 401."""
    from router.api import keys

    path = tmp_path / "keys.yaml"
    _, key = keys.create_key(path, "acme")
    config = scripted_config()
    config["server"]["tenant_keys_file"] = str(path)
    running = await start_http(config)
    auth = {"authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=running.base_url, timeout=30) as client:
        ok = await client.post(CHAT, json=body(stream=False), headers=auth)
        other = await client.post(
            CHAT, json=body(stream=False), headers={**auth, "x-tokenrouter-tenant": "globex"}
        )
        anonymous = await client.post(CHAT, json=body(stream=False))
    assert ok.status_code == 200 and ok.json()["tokenrouter"]["backend"] == "s"
    assert other.status_code == 403 and other.json()["error"]["type"] == "permission_error"
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["type"] == "authentication_error"
