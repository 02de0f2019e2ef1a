"""The official Anthropic SDK against a real router on the real SmolLM2 edge model (and a real
`python -m llama_cpp.server` backend, and a scripted OpenAI-compatible upstream for failures and
vision): create, stream, tools and tool results, system, images, auth with x-api-key, the raw
event stream against the recorded ones, and its error classes before and after the first token."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from router.api import keys
from tests.conftest import edge_config
from tests.fakes.fake_upstream import Script, load_recording
from tests.router.http.conftest import scripted_config
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
PNG = (  # a 1x1 PNG, base64
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJ"
    "RU5ErkJggg=="
)


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
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
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


def collapsed(raw: bytes) -> list[tuple]:
    """The shapes of a stream's events (pings left out), a run of one block's deltas as one."""
    out: list[tuple] = []
    for e in map(shape, events(raw)):
        if not (out and out[-1] == e):
            out.append(e)
    return out


async def test_raw_streams_match_the_recorded_anthropic_streams(edge_http) -> None:
    """The SSE bytes of a text answer and of a forced tool call have, event by event, the
    structure of the recorded Anthropic streams (tests/fakes/data/anthropic_*.sse)."""
    text = {"model": "auto", "max_tokens": 12, "messages": HELLO, "stream": True}
    ask = [{"role": "user", "content": "What is the weather in Paris?"}]
    tool = {
        **text,
        "max_tokens": 32,
        "messages": ask,
        "tools": [WEATHER],
        "tool_choice": {"type": "tool", "name": "get_weather"},
    }
    async with httpx.AsyncClient(base_url=edge_http.base_url, timeout=60) as http:
        answers = [(await http.post("/v1/messages", json=b)).content for b in (text, tool)]
    for raw, recording in zip(
        answers, ("anthropic_text_answer.sse", "anthropic_forced_tool.sse"), strict=True
    ):
        assert collapsed(raw) == collapsed(load_recording(recording)), recording
    (start,) = [e[1] for e in events(answers[1]) if e[0] == "content_block_start"]
    assert start["content_block"]["name"] == "get_weather" and start["content_block"]["id"]


async def test_the_streamed_usage_is_the_whole_answers(edge_http) -> None:
    """get_final_message's usage (message_delta's exact counts) equals that of the same
    request answered whole."""
    sdk = client(edge_http)
    whole = await sdk.messages.create(model="auto", max_tokens=8, messages=HELLO)
    async with sdk.messages.stream(model="auto", max_tokens=8, messages=HELLO) as stream:
        final = await stream.get_final_message()
    assert final.usage.input_tokens == whole.usage.input_tokens > 0
    assert final.usage.output_tokens > 0


async def test_a_real_llama_cpp_server_backend_streams_through_the_face(gpu_http) -> None:
    """With a real `python -m llama_cpp.server` as the backend, messages.stream relays its text
    and the final message names its model."""
    async with client(gpu_http).messages.stream(
        model="auto", max_tokens=12, messages=HELLO
    ) as stream:
        pieces = [t async for t in stream.text_stream]
        final = await stream.get_final_message()
    assert "".join(pieces) and final.content[0].text == "".join(pieces)
    assert final.model == "smollm2" and final.model_extra["tokenrouter"]["backend"] == "gpu"


def upstream_config(base_url: str) -> dict[str, Any]:
    spec = {"type": "openai", "model": "m", "base_url": base_url, "metrics": "none"}
    return {"server": {"grace_period_s": 1}, "backends": {"gpu": spec}}


async def test_a_failure_mid_stream_raises_in_the_sdk(start_http, upstream) -> None:
    """The upstream drops after two tokens: the SDK yields them, then raises APIStatusError
    from the `error` event (overloaded_error, naming the backend) — no silent truncation."""
    running = await start_http(upstream_config(upstream.base_url))
    upstream.script(Script(mode="close", after=2))
    texts: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as err:
        async with client(running).messages.stream(
            model="auto", max_tokens=8, messages=HELLO
        ) as stream:
            async for text in stream.text_stream:
                texts.append(text)
    assert "t0" in "".join(texts) and "t1" in "".join(texts)
    assert err.value.body["error"]["type"] == "overloaded_error"
    assert "gpu" in err.value.body["error"]["message"]


async def test_unavailable_and_rate_limited_are_the_sdk_classes(start_http, upstream) -> None:
    """Every attempt failing before the first token is a 503 (ServiceUnavailableError,
    overloaded_error) with the upstream's Retry-After; a budget refusal a 429 (RateLimitError,
    rate_limit_error) with Retry-After."""
    running = await start_http(upstream_config(upstream.base_url))
    upstream.default = Script(mode="status", status=503, retry_after="5")
    with pytest.raises(anthropic.ServiceUnavailableError) as down:
        await client(running).messages.create(model="auto", max_tokens=4, messages=HELLO)
    assert down.value.body["error"]["type"] == "overloaded_error"
    assert down.value.response.headers["retry-after"] == "5"
    config = scripted_config(price={"per_request": 0.01})
    budget = {"tenant": "*", "limit_usd": 0.001, "window": "1h"}
    config["policies"]["budget"] = {"type": "budget", "parameters": {"budgets": [budget]}}
    config["profiles"]["default"]["policies"].append({"policy": "budget"})
    limited = await start_http(config)
    with pytest.raises(anthropic.RateLimitError) as err:
        await client(limited).messages.create(model="auto", max_tokens=4, messages=HELLO)
    assert err.value.body["error"]["type"] == "rate_limit_error" and "budget" in err.value.message
    assert int(err.value.response.headers["retry-after"]) >= 1


async def test_the_400s_name_the_messages_fields(edge_http) -> None:
    """A BadRequestError names the body's field: an image's source.media_type (checked by the
    shared limits), tool_choice any without tools, a string tool_use input."""
    bmp = {"type": "base64", "media_type": "image/bmp", "data": "AAAA"}
    cases = [
        (
            [{"role": "user", "content": [{"type": "image", "source": bmp}]}],
            {},
            "messages[0].content[0].source.media_type",
        ),
        (HELLO, {"tool_choice": {"type": "any"}}, "tool_choice.type"),
        (
            [
                *HELLO,
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t", "name": "w", "input": "{}"}],
                },
            ],
            {},
            "messages[1].content[0].input",
        ),
    ]
    for messages, extra, field in cases:
        with pytest.raises(anthropic.BadRequestError) as err:
            await client(edge_http).messages.create(
                model="auto", max_tokens=4, messages=messages, **extra
            )
        assert err.value.body["error"]["type"] == "invalid_request_error"
        assert err.value.body["error"]["message"].startswith(field + ":"), field


async def test_an_image_block_reaches_a_vision_backend(start_http, upstream) -> None:
    """With a backend that has vision, a base64 image block and a URL image block reach the
    upstream as the same image (OpenAI image_url parts), beside the turn's text."""
    config = upstream_config(upstream.base_url)
    config["backends"]["gpu"]["features"] = ["streaming", "vision"]
    running = await start_http(config)
    content = [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
        {"type": "text", "text": "What are these?"},
    ]
    message = await client(running).messages.create(
        model="auto", max_tokens=4, messages=[{"role": "user", "content": content}]
    )
    assert message.content[0].text
    (sent,) = [r.json for r in upstream.requests if r.path.endswith("/chat/completions")]
    parts = sent["messages"][-1]["content"]
    urls = [p["image_url"]["url"] for p in parts if p["type"] == "image_url"]
    assert urls == [f"data:image/png;base64,{PNG}", "https://example.com/cat.png"]
    assert [p["text"] for p in parts if p["type"] == "text"] == ["What are these?"]
