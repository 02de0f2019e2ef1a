"""The official `openai` SDK and LangChain's ChatOpenAI against a real router's HTTP face: on the
real SmolLM2 edge model, through a real `python -m llama_cpp.server` backend, and every error
case with the SDK's own exception classes. The sync client runs in a thread (it blocks; the
router serves on the test's event loop)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import openai
import pytest
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from router.api import keys
from tests.conftest import edge_config
from tests.fakes.fake_upstream import Script
from tests.router.http.conftest import scripted_config

HELLO = [{"role": "user", "content": "Say hello."}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
FORCE_WEATHER = {"type": "function", "function": {"name": "get_weather"}}
TOOL_TOKENS = 48  # a forced call on the edge takes ~40 tokens with its wrapper (32 ends at length)


def sync_client(running: Any, **kw: Any) -> openai.OpenAI:
    kw.setdefault("api_key", "unused")
    return openai.OpenAI(base_url=running.base_url + "/v1", max_retries=0, timeout=120, **kw)


def async_client(running: Any, **kw: Any) -> openai.AsyncOpenAI:
    kw.setdefault("api_key", "unused")
    return openai.AsyncOpenAI(base_url=running.base_url + "/v1", max_retries=0, timeout=120, **kw)


async def test_sync_create_answers_a_chat_completion(edge_http) -> None:
    """A non-streaming create on the edge model: text, finish reason, usage, the model that
    answered, the config version as system_fingerprint and the decision field."""
    with sync_client(edge_http) as client:
        completion = await asyncio.to_thread(
            client.chat.completions.create, model="auto", messages=HELLO, max_tokens=12
        )
    choice = completion.choices[0]
    assert choice.message.role == "assistant" and choice.message.content
    assert choice.finish_reason in ("stop", "length")
    assert completion.model == "smollm2" and completion.id.startswith("chatcmpl-")
    assert completion.usage.completion_tokens > 0
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )
    assert completion.system_fingerprint == edge_http.server.router.loaded.version
    fields = completion.model_extra["tokenrouter"]
    assert fields["backend"] == "edge-smollm2" and fields["tier"] == "edge"


async def test_sync_stream_with_include_usage(edge_http) -> None:
    """A sync stream: the role first, text deltas, the finish chunk, then a usage chunk with no
    choices; usage is null on the others."""

    def run() -> list[Any]:
        with sync_client(edge_http) as client:
            stream = client.chat.completions.create(
                model="auto",
                messages=HELLO,
                max_tokens=12,
                stream=True,
                stream_options={"include_usage": True},
            )
            return list(stream)

    chunks = await asyncio.to_thread(run)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[-2].choices[0].finish_reason in ("stop", "length")
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    assert all(c.usage is None for c in chunks[:-1])
    assert chunks[0].model_extra["tokenrouter"]["backend"] == "edge-smollm2"
    assert chunks[-1].model_extra["tokenrouter"]["backends_tried"] == ["edge-smollm2"]


async def test_async_create_and_stream(edge_http) -> None:
    """The async client, non-streaming and streaming, answers on the same server; a stream
    without include_usage has no usage chunk."""
    async with async_client(edge_http) as client:
        completion = await client.chat.completions.create(
            model="auto", messages=HELLO, max_tokens=8
        )
        stream = await client.chat.completions.create(
            model="smollm2", messages=HELLO, max_tokens=8, stream=True
        )
        chunks = [c async for c in stream]
    assert completion.choices[0].message.content
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")
    assert all(c.usage is None and c.choices for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks)


async def test_decision_headers_come_with_the_raw_response(edge_http) -> None:
    """with_raw_response shows the decision headers; the parsed body matches them."""
    async with async_client(edge_http) as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="auto", messages=HELLO, max_tokens=4, extra_headers={"x-request-id": "sdk-1"}
        )
    completion = raw.parse()
    assert raw.headers["x-tokenrouter-backend"] == "edge-smollm2"
    assert raw.headers["x-tokenrouter-tier"] == "edge" and raw.headers["x-tokenrouter-solver"]
    version = edge_http.server.router.loaded.version
    assert raw.headers["x-tokenrouter-config-version"] == version
    assert raw.headers["x-tokenrouter-request-id"] == "sdk-1" and completion.id == "chatcmpl-sdk-1"


async def test_a_named_tool_choice_gives_a_tool_call(edge_http) -> None:
    """A forced tool on the edge (grammar-constrained): the call's name and JSON arguments, as
    a whole completion and as a stream the SDK's helper assembles."""
    async with async_client(edge_http) as client:
        completion = await client.chat.completions.create(
            model="auto",
            messages=[{"role": "user", "content": "What is the weather in Paris?"}],
            tools=[WEATHER],
            tool_choice=FORCE_WEATHER,
            max_tokens=TOOL_TOKENS,
        )
        async with client.chat.completions.stream(
            model="auto",
            messages=[{"role": "user", "content": "What is the weather in Tokyo?"}],
            tools=[WEATHER],
            tool_choice=FORCE_WEATHER,
            max_tokens=TOOL_TOKENS,
        ) as stream:
            streamed = await stream.get_final_completion()
    for answer in (completion, streamed):
        assert answer.choices[0].finish_reason == "tool_calls"
        (call,) = answer.choices[0].message.tool_calls
        assert call.type == "function" and call.function.name == "get_weather" and call.id
        assert isinstance(json.loads(call.function.arguments)["city"], str)


class City(BaseModel):
    name: str
    country: str


async def test_structured_output_follows_the_json_schema(edge_http) -> None:
    """response_format json_schema strict gives JSON of that schema; chat.completions.parse
    with a pydantic model returns the parsed object."""
    schema = City.model_json_schema()
    async with async_client(edge_http) as client:
        completion = await client.chat.completions.create(
            model="auto",
            messages=[{"role": "user", "content": "Name a city and its country."}],
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "city", "schema": schema, "strict": True},
            },
            max_tokens=32,
        )
        parsed = await client.chat.completions.parse(
            model="auto",
            messages=[{"role": "user", "content": "Name a city and its country."}],
            response_format=City,
            max_tokens=32,
        )
    assert set(json.loads(completion.choices[0].message.content)) == {"name", "country"}
    city = parsed.choices[0].message.parsed
    assert isinstance(city, City) and city.name


async def test_through_a_real_llama_cpp_server_backend(gpu_http) -> None:
    """The face in front of a real llama_cpp.server (the OpenAI-compatible backend): a stream
    with usage, placed on the cloud-GPU tier."""
    async with async_client(gpu_http) as client:
        stream = await client.chat.completions.create(
            model="auto",
            messages=HELLO,
            max_tokens=8,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [c async for c in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[-1].usage.completion_tokens > 0
    assert chunks[0].model_extra["tokenrouter"]["tier"] == "cloud_gpu"


async def test_langchain_chat_openai_runs_a_tool_loop(edge_http) -> None:
    """ChatOpenAI against the router: a forced tool call, then the ToolMessage answered with
    text."""

    @tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return f"Sunny and 22 C in {city}."

    base_url = edge_http.base_url + "/v1"
    llm = ChatOpenAI(
        base_url=base_url, api_key="unused", model="auto", max_tokens=TOOL_TOKENS, max_retries=0
    )
    question = HumanMessage("What is the weather in Paris?")
    called = await llm.bind_tools([get_weather], tool_choice="get_weather").ainvoke([question])
    (call,) = called.tool_calls
    assert call["name"] == "get_weather" and isinstance(call["args"]["city"], str)
    result = ToolMessage(get_weather.invoke(call["args"]), tool_call_id=call["id"])
    answer = await llm.bind_tools([get_weather]).ainvoke([question, called, result])
    assert isinstance(answer.content, str) and answer.content
    assert answer.response_metadata["model_name"] == "smollm2"


async def test_a_bad_key_is_an_authentication_error(start_http, tmp_path) -> None:
    """With tenant keys, an unknown key is 401 (AuthenticationError, invalid_api_key) and the
    tenant's key is served."""
    path = tmp_path / "keys.yaml"
    _, key = keys.create_key(path, "acme")
    config = scripted_config()
    config["server"]["tenant_keys_file"] = str(path)
    running = await start_http(config)
    async with async_client(running, api_key="trk_000000000000_wrong") as client:
        with pytest.raises(openai.AuthenticationError) as err:
            await client.chat.completions.create(model="auto", messages=HELLO, max_tokens=4)
    assert err.value.status_code == 401
    assert err.value.type == "authentication_error" and err.value.code == "invalid_api_key"
    async with async_client(running, api_key=key) as client:
        completion = await client.chat.completions.create(
            model="auto", messages=HELLO, max_tokens=4
        )
    assert completion.choices[0].message.content


async def test_an_unknown_model_is_not_found(start_http) -> None:
    """A model no backend serves is 404: NotFoundError, code model_not_found, param model."""
    running = await start_http(scripted_config())
    async with async_client(running) as client:
        with pytest.raises(openai.NotFoundError) as err:
            await client.chat.completions.create(model="gpt-9", messages=HELLO, max_tokens=4)
    assert err.value.code == "model_not_found" and err.value.param == "model"
    assert err.value.type == "invalid_request_error" and "gpt-9" in err.value.message


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"n": 2}, "n"),
        ({"temperature": 7}, "temperature"),
        ({"extra_body": {"logprobs": True}}, "logprobs"),
        (
            {"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]},
            "messages[0].content[0].type",
        ),
        ({"tool_choice": "required"}, "tool_choice"),
        (
            {"tools": [{"type": "function", "function": {"name": "no spaces"}}]},
            "tools[0].function.name",
        ),
        (
            {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "x"}}},
            "tool_choice.function.name",
        ),
    ],
)
async def test_a_wrong_field_is_a_bad_request_naming_it(start_http, fields, param) -> None:
    """A 400 (BadRequestError, invalid_request_error) whose param names the field, from the
    face's parse or from the shared request checks."""
    running = await start_http(scripted_config())
    request: dict[str, Any] = {"model": "auto", "messages": HELLO, "max_tokens": 4, **fields}
    async with async_client(running) as client:
        with pytest.raises(openai.BadRequestError) as err:
            await client.chat.completions.create(**request)
    assert err.value.status_code == 400 and err.value.type == "invalid_request_error"
    assert err.value.param == param and param in err.value.message


async def test_an_exhausted_budget_is_a_rate_limit_with_retry_after(start_http) -> None:
    """A tenant budget smaller than the request's worst cost: 429 (RateLimitError,
    rate_limit_error) with Retry-After, the message naming the budget."""
    config = scripted_config(price={"per_request": 0.01})
    budget = {"tenant": "*", "limit_usd": 0.001, "window": "1h"}
    config["policies"]["budget"] = {"type": "budget", "parameters": {"budgets": [budget]}}
    config["profiles"]["default"]["policies"].append({"policy": "budget"})
    running = await start_http(config)
    async with async_client(running) as client:
        with pytest.raises(openai.RateLimitError) as err:
            await client.chat.completions.create(model="auto", messages=HELLO, max_tokens=4)
    assert err.value.status_code == 429 and err.value.type == "rate_limit_error"
    assert int(err.value.response.headers["retry-after"]) >= 1
    assert "budget" in err.value.message


def upstream_config(base_url: str) -> dict[str, Any]:
    spec = {"type": "openai", "model": "m", "base_url": base_url, "metrics": "none"}
    return {"server": {"grace_period_s": 1}, "backends": {"gpu": spec}}


async def test_a_failing_backend_is_unavailable(start_http, upstream) -> None:
    """Every attempt failing before the first token: 503 (InternalServerError, api_error)
    naming the backend, with the upstream's Retry-After."""
    running = await start_http(upstream_config(upstream.base_url))
    upstream.default = Script(mode="status", status=503, retry_after="5")
    async with async_client(running) as client:
        with pytest.raises(openai.InternalServerError) as err:
            await client.chat.completions.create(model="auto", messages=HELLO, max_tokens=4)
    assert err.value.status_code == 503 and err.value.type == "api_error"
    assert "gpu" in err.value.message and err.value.response.headers["retry-after"] == "5"


async def test_a_failure_mid_stream_raises_in_the_sdk(start_http, upstream) -> None:
    """The upstream drops after two tokens: the SDK yields them, then raises APIError from the
    in-stream error event (never a silent, truncated success)."""
    running = await start_http(upstream_config(upstream.base_url))
    upstream.script(Script(mode="close", after=2))
    texts: list[str] = []
    async with async_client(running) as client:
        stream = await client.chat.completions.create(
            model="auto", messages=HELLO, max_tokens=8, stream=True
        )
        with pytest.raises(openai.APIError) as err:
            async for chunk in stream:
                texts.append(chunk.choices[0].delta.content or "")
    assert "t0" in "".join(texts) and "t1" in "".join(texts)
    assert err.value.body["type"] == "api_error" and "gpu" in err.value.message


async def test_models_lists_auto_and_the_configured_models(start_http) -> None:
    """client.models.list() gives auto, the backend's model and its alias."""
    running = await start_http(scripted_config())
    async with async_client(running) as client:
        page = await client.models.list()
    assert [m.id for m in page.data] == ["auto", "m", "mm"]
    assert all(m.owned_by == "tokenrouter" and m.object == "model" for m in page.data)


async def test_the_alias_restricts_the_model_edge(start_http) -> None:
    """An alias names the backend's model: the answer's model is the model, not the alias."""
    running = await start_http(edge_config(aliases=["tiny"]))
    async with async_client(running) as client:
        completion = await client.chat.completions.create(
            model="tiny", messages=HELLO, max_tokens=4
        )
    assert completion.model == "smollm2"
