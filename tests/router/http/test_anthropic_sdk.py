"""The official Anthropic SDK against a real router on the real SmolLM2 edge model: create,
stream, tools and tool results, system, images, auth with x-api-key, and its error classes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from router.api import keys
from tests.conftest import edge_config
from tests.router.http.test_anthropic_face import events, shape

WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
HELLO = [{"role": "user", "content": "Say hello."}]


def client(running: Any, key: str = "unused", **kw: Any) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=running.base_url, api_key=key, max_retries=0, **kw)


async def test_messages_create_answers_with_text_and_usage(edge_http) -> None:
    """messages.create returns a message with a text block, a stop reason, the usage and the
    decision's model."""
    message = await client(edge_http).messages.create(
        model="auto", max_tokens=16, system="You are terse.", messages=HELLO
    )
    assert message.type == "message" and message.role == "assistant"
    assert message.content[0].type == "text" and message.content[0].text
    assert message.stop_reason in ("end_turn", "max_tokens")
    assert message.usage.input_tokens > 0 and 0 < message.usage.output_tokens <= 16
    assert message.model == "smollm2"
    assert message.model_extra["tokenrouter"]["backend"] == "edge-smollm2"


async def test_messages_stream_yields_text_and_the_final_message(edge_http) -> None:
    """messages.stream's text_stream gives the text as it comes, and get_final_message the
    same text with its usage."""
    async with client(edge_http).messages.stream(
        model="auto", max_tokens=16, messages=HELLO
    ) as stream:
        pieces = [text async for text in stream.text_stream]
        final = await stream.get_final_message()
    assert len(pieces) > 1
    assert final.content[0].text == "".join(pieces)
    assert final.usage.output_tokens > 0 and final.stop_reason in ("end_turn", "max_tokens")


async def test_a_forced_tool_call_then_its_result(edge_http) -> None:
    """tool_choice {type: tool} makes the model call get_weather with a city (streamed and
    assembled by the SDK); sending the tool_result back gets a text answer."""
    sdk = client(edge_http)
    ask = [{"role": "user", "content": "What is the weather in Paris?"}]
    async with sdk.messages.stream(
        model="auto",
        max_tokens=48,
        messages=ask,
        tools=[WEATHER],
        tool_choice={"type": "tool", "name": "get_weather"},
    ) as stream:
        call = await stream.get_final_message()
    (use,) = [b for b in call.content if b.type == "tool_use"]
    assert call.stop_reason == "tool_use" and use.name == "get_weather"
    assert isinstance(use.input.get("city"), str)
    turn = [
        *ask,
        {"role": "assistant", "content": [b.model_dump() for b in call.content]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "Sunny, 24 C"}],
        },
    ]
    answer = await sdk.messages.create(
        model="auto", max_tokens=24, messages=turn, tools=[WEATHER], tool_choice={"type": "none"}
    )
    assert answer.content[0].type == "text" and answer.content[0].text


async def test_an_image_block_is_refused_where_no_backend_has_vision(edge_http) -> None:
    """The edge model has no vision: an image block gets a BadRequestError naming vision."""
    png = (
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJ"
        "RU5ErkJggg=="
    )
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}}
    content = [image, {"type": "text", "text": "What is this?"}]
    with pytest.raises(anthropic.BadRequestError) as err:
        await client(edge_http).messages.create(
            model="auto", max_tokens=8, messages=[{"role": "user", "content": content}]
        )
    assert "vision" in str(err.value)
    assert err.value.body["error"]["type"] == "invalid_request_error"


async def test_errors_come_as_the_sdk_classes(edge_http) -> None:
    """An unknown model is NotFoundError; a missing max_tokens (sent raw) is a 400 naming it."""
    with pytest.raises(anthropic.NotFoundError) as err:
        await client(edge_http).messages.create(model="gpt-9", max_tokens=8, messages=HELLO)
    assert err.value.body["error"]["type"] == "not_found_error"
    async with httpx.AsyncClient(base_url=edge_http.base_url) as http:
        response = await http.post("/v1/messages", json={"model": "auto", "messages": HELLO})
    assert response.status_code == 400 and "max_tokens" in response.json()["error"]["message"]
    orphan = [
        {"role": "user", "content": "hi"},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_x"}]},
    ]
    with pytest.raises(anthropic.BadRequestError) as bad:
        await client(edge_http).messages.create(model="auto", max_tokens=8, messages=orphan)
    assert "messages[1].content[0].tool_use_id" in bad.value.body["error"]["message"]


async def test_the_tenant_key_goes_in_x_api_key(start_http, tmp_path: Path) -> None:
    """With tenant keys on, the SDK's x-api-key (or a Bearer auth_token) authenticates and the
    tenant is the key's; a wrong key is AuthenticationError, naming another tenant
    PermissionDeniedError."""
    path = tmp_path / "keys.yaml"
    _, key = keys.create_key(path, "acme")
    config = edge_config()
    config["server"]["tenant_keys_file"] = str(path)
    running = await start_http(config)
    message = await client(running, key).messages.create(model="auto", max_tokens=4, messages=HELLO)
    assert message.content
    with pytest.raises(anthropic.AuthenticationError):
        await client(running, "tr_wrong").messages.create(
            model="auto", max_tokens=4, messages=HELLO
        )
    bearer = anthropic.AsyncAnthropic(base_url=running.base_url, auth_token=key, max_retries=0)
    assert (await bearer.messages.create(model="auto", max_tokens=4, messages=HELLO)).content
    other = client(running, key, default_headers={"x-tokenrouter-tenant": "globex"})
    with pytest.raises(anthropic.PermissionDeniedError) as denied:
        await other.messages.create(model="auto", max_tokens=4, messages=HELLO)
    assert denied.value.body["error"]["type"] == "permission_error"


async def test_the_raw_stream_has_the_documented_event_sequence(edge_http) -> None:
    """The SSE bytes of a text answer: message_start, one text block's start, deltas and stop,
    message_delta, message_stop — each with its documented fields."""
    body = {"model": "auto", "max_tokens": 12, "messages": HELLO, "stream": True}
    async with httpx.AsyncClient(base_url=edge_http.base_url, timeout=60) as http:
        response = await http.post("/v1/messages", json=body)
    assert response.headers["content-type"].startswith("text/event-stream")
    evts = events(response.content)
    kinds = [shape(e)[:3] for e in evts]
    assert kinds[0] == ("message_start", "message_start", None)
    assert kinds[1] == ("content_block_start", "content_block_start", "text")
    assert set(kinds[2:-3]) == {("content_block_delta", "content_block_delta", "text_delta")}
    assert kinds[-3:] == [
        ("content_block_stop", "content_block_stop", None),
        ("message_delta", "message_delta", None),
        ("message_stop", "message_stop", None),
    ]
    message = evts[0][1]["message"]
    assert message["content"] == [] and message["usage"]["output_tokens"] == 0
    assert evts[-2][1]["usage"]["output_tokens"] > 0


async def test_the_sync_client_works_too(edge_http) -> None:
    """The blocking Anthropic client (in a thread: the server shares this loop) creates."""

    def call() -> str:
        sdk = anthropic.Anthropic(base_url=edge_http.base_url, api_key="x", max_retries=0)
        return sdk.messages.create(model="auto", max_tokens=8, messages=HELLO).content[0].text

    assert await asyncio.to_thread(call)
