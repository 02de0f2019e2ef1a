"""ChatTokenRouter beyond the standard suites: routing fields, metadata, tool-call streaming,
errors, through a real router server on scripted backends."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from pydantic import BaseModel

from router.client import build_request
from router.integrations.langchain import (
    ChatTokenRouter,
    TokenRouterError,
    TokenRouterInvalidRequest,
)
from router.integrations.langchain_convert import client_messages


def scripted(model: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "scripted", "model": model, "text": text, **extra}


CALLS = [
    {"name": "get_weather", "arguments": {"city": "Paris"}},
    {"name": "get_time", "arguments": {"zone": "Europe/Paris"}},
]
TWO = {
    "backends": {
        "gpu-a": scripted("model-a", "It is sunny in Paris.", tool_calls=CALLS),
        "gpu-b": scripted("model-b", "Answer from b.", features=["streaming", "tools", "vision"]),
    },
    "policies": {"capability": {"type": "capability"}},
    "profiles": {
        "default": {"policies": [{"policy": "capability"}]},
        "careful": {"policies": [{"policy": "capability"}]},
    },
}


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def get_time(zone: str) -> str:
    """The time in a time zone."""
    return "noon"


async def test_invoke_reports_usage_and_the_whole_decision(start_server):
    """invoke() returns the text with token usage and the decision in response_metadata."""
    srv = await start_server(TWO)
    llm = ChatTokenRouter(target=srv.target, max_tokens=32)
    msg = await asyncio.to_thread(llm.invoke, "Hello")
    assert msg.content == "It is sunny in Paris."
    usage = msg.usage_metadata
    assert usage["output_tokens"] == 5 and usage["total_tokens"] == usage["input_tokens"] + 5
    meta = msg.response_metadata
    assert (meta["model_name"], meta["backend"]) == ("model-a", "gpu-a")
    assert meta["finish_reason"] == "stop"
    assert meta["tier"] == "CLOUD_GPU" and meta["backends_tried"] == ["gpu-a"]
    decision = meta["decision"]
    assert decision["solver"] and decision["config_version"] and decision["request_id"]
    assert {c["backend"] for c in decision["candidates"]} == {"gpu-a", "gpu-b"}


async def test_model_override_per_call_and_bound_routes_to_the_other_backend(start_server):
    """model= at invoke time or through bind() makes the router serve that model."""
    srv = await start_server(TWO)
    llm = ChatTokenRouter(target=srv.target)
    per_call = await asyncio.to_thread(llm.invoke, "Hi", model="model-b")
    bound = await llm.bind(model="model-b").ainvoke("Hi")
    default = await llm.ainvoke("Hi")
    assert per_call.content == bound.content == "Answer from b."
    assert per_call.response_metadata["backend"] == bound.response_metadata["backend"] == "gpu-b"
    assert default.response_metadata["backend"] == "gpu-a"


async def test_routing_fields_reach_the_router(start_server):
    """privacy and profile set on the model are what the router's decision honoured."""
    srv = await start_server(TWO)
    llm = ChatTokenRouter(target=srv.target, privacy="CONFIDENTIAL", profile="careful")
    decision = (await llm.ainvoke("Hi", tenant="team-1")).response_metadata["decision"]
    assert decision["privacy"] == "CONFIDENTIAL" and decision["profile"] == "careful"
    override = await llm.bind(privacy="restricted", profile="default").ainvoke("Hi")
    assert override.response_metadata["decision"]["privacy"] == "RESTRICTED"
    assert override.response_metadata["decision"]["profile"] == "default"


def test_model_fields_and_call_fields_make_one_request():
    """Model parameters, bound and per-call options and metadata merge into the GenerateRequest."""
    llm = ChatTokenRouter(
        target="127.0.0.1:1",
        max_tokens=12,
        temperature=0.2,
        top_p=0.9,
        seed=7,
        stop=["END"],
        latency_slo_ms=800,
        max_cost_usd=0.01,
        tenant="team-1",
        request_metadata={"app": "x", "run": "1"},
    )
    options = llm._options(None, {"max_tokens": 5, "request_metadata": {"run": "2"}})
    req = build_request(client_messages([HumanMessage("hi")]), **options)
    assert (req.max_tokens, req.seed, list(req.stop), req.latency_slo_ms) == (5, 7, ["END"], 800)
    assert req.temperature == pytest.approx(0.2) and req.top_p == pytest.approx(0.9)
    assert req.max_cost_usd == pytest.approx(0.01) and req.tenant == "team-1"
    assert dict(req.metadata) == {"app": "x", "run": "2"}
    assert list(build_request("hi", **llm._options(["STOP"], {})).stop) == ["STOP"]


async def test_stream_yields_tool_call_chunks_that_join_into_calls(start_server):
    """astream() gives tool_call_chunks (index, id, name, args fragments); their sum has calls."""
    srv = await start_server(TWO)
    llm = ChatTokenRouter(target=srv.target).bind_tools([get_weather, get_time])
    chunks = [c async for c in llm.astream("Weather and time in Paris?")]
    fragments = [f for c in chunks for f in c.tool_call_chunks]
    assert {f["index"] for f in fragments} == {0, 1}
    assert [f["name"] for f in fragments if f["name"]] == ["get_weather", "get_time"]
    assert len(fragments) > 2 and all(f["id"] for f in fragments if f["name"])
    full = chunks[0]
    for c in chunks[1:]:
        full = full + c
    assert isinstance(full, AIMessageChunk) and chunks[-1].chunk_position == "last"
    assert [(c["name"], c["args"]) for c in full.tool_calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_time", {"zone": "Europe/Paris"}),
    ]
    assert full.response_metadata["finish_reason"] == "tool_calls"


async def test_agent_loop_with_a_named_tool_choice(start_server):
    """A named tool_choice forces that one call; its ToolMessage result brings the text back."""
    srv = await start_server(TWO)
    llm = ChatTokenRouter(target=srv.target).bind_tools(
        [get_weather, get_time], tool_choice="get_time"
    )
    question = HumanMessage("What time is it in Paris?")
    call_msg = await llm.ainvoke([question])
    assert [c["name"] for c in call_msg.tool_calls] == ["get_time"]
    call = call_msg.tool_calls[0]
    result = ToolMessage(get_time(**call["args"]), tool_call_id=call["id"])
    final = await llm.ainvoke([question, call_msg, result])
    assert final.content == "It is sunny in Paris." and not final.tool_calls


async def test_function_calling_structured_output_parses_the_call(start_server):
    """with_structured_output(method="function_calling") returns the forced call as the model."""

    class get_weather(BaseModel):  # the scripted call's name
        city: str

    srv = await start_server(TWO)
    llm = ChatTokenRouter(target=srv.target)
    structured = llm.with_structured_output(get_weather, method="function_calling")
    assert await structured.ainvoke("Weather in Paris?") == get_weather(city="Paris")
    raw = await llm.with_structured_output(
        get_weather, method="function_calling", include_raw=True
    ).ainvoke("Weather?")
    assert isinstance(raw["raw"], AIMessage) and raw["parsing_error"] is None


async def test_router_errors_keep_the_message_naming_the_field(start_server):
    """A field the router refuses raises TokenRouterInvalidRequest with the router's message."""
    srv = await start_server(TWO)
    bad_tool = {"name": "bad name!", "description": "x", "parameters": {"type": "object"}}
    llm = ChatTokenRouter(target=srv.target).bind_tools([bad_tool])
    with pytest.raises(TokenRouterInvalidRequest, match=r"tools\[0\]\.name") as err:
        await llm.ainvoke("Hi")
    assert err.value.code == "INVALID_ARGUMENT" and isinstance(err.value, ValueError)
    with pytest.raises(TokenRouterInvalidRequest, match="max_tokens"):
        await asyncio.to_thread(ChatTokenRouter(target=srv.target).invoke, "Hi", max_tokens=-1)


async def test_no_feasible_backend_names_backends_and_policies(start_server):
    """An image for text-only backends fails with FAILED_PRECONDITION naming who refused it."""
    data = {**TWO, "backends": {"gpu-a": TWO["backends"]["gpu-a"]}}
    srv = await start_server(data)
    image = {"type": "image", "base64": "iVBORw0KGgo=", "mime_type": "image/png"}
    llm = ChatTokenRouter(target=srv.target)
    with pytest.raises(TokenRouterError, match="gpu-a excluded by capability") as err:
        await llm.ainvoke([HumanMessage([{"type": "text", "text": "What is it?"}, image])])
    assert err.value.code == "FAILED_PRECONDITION"


async def test_images_reach_a_vision_backend(start_server):
    """Standard image blocks (base64 and url) go out as image parts a vision backend takes."""
    srv = await start_server(TWO)
    llm = ChatTokenRouter(target=srv.target)
    content = [
        {"type": "text", "text": "Describe these."},
        {"type": "image", "base64": "iVBORw0KGgo=", "mime_type": "image/png"},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
    ]
    msg = await llm.ainvoke([HumanMessage(content)])
    assert msg.response_metadata["backend"] == "gpu-b"


async def test_unreachable_router_is_retried_then_unavailable():
    """A router that does not answer raises UNAVAILABLE after max_retries retries."""
    llm = ChatTokenRouter(target="127.0.0.1:1", max_retries=1, timeout=5)
    with pytest.raises(TokenRouterError) as err:
        await llm.ainvoke("Hi")
    assert err.value.code == "UNAVAILABLE"
    with pytest.raises(TokenRouterError, match="UNAVAILABLE"):
        await asyncio.to_thread(llm.invoke, "Hi")


def test_client_side_errors_name_the_option():
    """Unknown options, privacy classes, tool_choice names and content blocks are refused early."""
    llm = ChatTokenRouter(target="127.0.0.1:1")
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['temprature'\]"):
        llm.invoke("Hi", temprature=0)
    with pytest.raises(ValueError, match="privacy: 'secret'"):
        ChatTokenRouter(privacy="secret")
    with pytest.raises(ValueError, match="tool_choice: 'nope' is not a bound tool"):
        llm.bind_tools([get_weather], tool_choice="nope")
    with pytest.raises(ValueError, match=r"messages\[0\]\.content\[1\]: a 'file' block"):
        client_messages([HumanMessage([{"type": "text", "text": "x"}, {"type": "file"}])])


def test_messages_convert_to_the_clients_shape():
    """Tool calls, tool_use blocks, tool results, reasoning blocks map to Chat Completions dicts."""
    ai = AIMessage(
        [
            {"type": "thinking", "thinking": "hmm"},
            {"type": "text", "text": "some text"},
            {"type": "tool_use", "id": "c1", "name": "get_weather", "input": {"city": "Oslo"}},
        ],
        tool_calls=[{"name": "get_weather", "args": {"city": "Oslo"}, "id": "c1"}],
    )
    tool = ToolMessage("rain", tool_call_id="c1")
    out = client_messages([HumanMessage("hi", name="u"), ai, tool])
    assert out[0] == {"role": "user", "content": "hi"}
    assert out[1]["content"] == "some text"
    (call,) = out[1]["tool_calls"]
    assert call["id"] == "c1" and json.loads(call["function"]["arguments"]) == {"city": "Oslo"}
    assert out[2] == {"role": "tool", "content": "rain", "tool_call_id": "c1"}
    v1 = AIMessage(
        [{"type": "tool_call", "id": "c2", "name": "get_time", "args": {"zone": "UTC"}}],
        tool_calls=[{"name": "get_time", "args": {"zone": "UTC"}, "id": "c2"}],
    )
    (v1_out,) = client_messages([v1])  # output_version="v1" content: calls as blocks
    assert v1_out["content"] == "" and v1_out["tool_calls"][0]["id"] == "c2"


def test_tool_choice_any_means_required_and_json_schema_is_strict():
    """bind_tools maps "any" to required; json_schema structured output binds a strict format."""
    llm = ChatTokenRouter(target="127.0.0.1:1")
    assert llm.bind_tools([get_weather], tool_choice="any").kwargs["tool_choice"] == "required"

    class City(BaseModel):
        name: str

    bound = llm.with_structured_output(City).first  # the bound model, before the parser
    fmt = bound.kwargs["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["schema"]["required"] == ["name"]


async def test_stopping_a_stream_early_cancels_generation(start_server):
    """Leaving stream() or astream() after the first chunk stops the backend's generation."""
    slow = scripted("model-s", " ".join(["word"] * 200), token_interval_ms=20)
    srv = await start_server({"backends": {"slow": slow}})
    backend = srv.server.router.backends["slow"]
    llm = ChatTokenRouter(target=srv.target, max_tokens=200)

    async def idle() -> bool:
        for _ in range(200):
            if backend.load().in_flight == 0:
                return True
            await asyncio.sleep(0.01)
        return False

    async for _ in llm.astream("Talk."):
        assert backend.load().in_flight == 1
        break
    assert await idle()

    def first_sync_chunk() -> None:
        stream = llm.stream("Talk.")
        next(stream)
        stream.close()

    await asyncio.to_thread(first_sync_chunk)
    assert await idle()
