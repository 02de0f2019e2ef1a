"""The client's agent vocabulary: tools, tool calls and tool results through a real server."""

from __future__ import annotations

import asyncio
import json

import pytest

from router.api import router_pb2 as pb
from router.client import AsyncRouterClient, GenerateResult, RouterClient, build_request
from router.client_messages import ToolCallAssembler

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
CLOCK = {"name": "get_time", "description": "The time now.", "parameters": {"type": "object"}}
SCRIPTED = {
    "backends": {
        "gpu": {
            "type": "scripted",
            "model": "m",
            "text": "It is sunny in Paris.",
            "tool_calls": [
                {"name": "get_weather", "arguments": {"city": "Paris"}},
                {"name": "get_time", "arguments": {}},
            ],
        }
    }
}


def test_build_request_takes_openai_shaped_conversations():
    """Chat Completions dicts map to tool calls, tool results, parts, tools and formats."""
    req = build_request(
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "hi"},
                    {"type": "image_url", "image_url": {"url": "https://x/a.png"}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": {"city": "Oslo"}},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "rain"},
        ],
        tools=[WEATHER, CLOCK],
        tool_choice={"type": "function", "function": {"name": "get_time"}},
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "w", "schema": {"type": "object"}, "strict": True},
        },
        stop="END",
        seed=7,
    )
    user, assistant, tool = req.messages
    assert [p.type for p in user.parts] == ["text", "image"] and user.parts[
        1
    ].image_url == "https://x/a.png"
    assert assistant.tool_calls[0] == pb.ToolCall(
        id="c1", name="get_weather", arguments='{"city": "Oslo"}'
    )
    assert tool.role == "tool" and tool.tool_call_id == "c1" and tool.content == "rain"
    assert [t.name for t in req.tools] == ["get_weather", "get_time"]
    assert json.loads(req.tools[0].parameters)["required"] == ["city"]
    assert req.tool_choice == pb.ToolChoice(mode="tool", name="get_time")
    assert req.response_format.type == "json_schema" and req.response_format.strict
    assert list(req.stop) == ["END"] and req.seed == 7


def test_tool_call_assembler_joins_fragments_by_index():
    """Fragments of two interleaved calls join into two complete calls in index order."""
    asm = ToolCallAssembler()
    for d in [
        pb.ToolCallDelta(index=1, id="b", name="t2"),
        pb.ToolCallDelta(index=0, id="a", name="t1"),
        pb.ToolCallDelta(index=0, arguments='{"x"'),
        pb.ToolCallDelta(index=1, arguments="{}"),
        pb.ToolCallDelta(index=0, arguments=": 1}"),
    ]:
        asm.feed(d)
    (a, b) = asm.calls()
    assert (a.id, a.name, a.args()) == ("a", "t1", {"x": 1}) and (b.id, b.name, b.args()) == (
        "b",
        "t2",
        {},
    )


async def test_async_agent_loop_against_scripted_backend(start_server):
    """generate() yields tool-call fragments; chat() gives the calls; a tool result gets text."""
    srv = await start_server(SCRIPTED)
    messages: list = [{"role": "user", "content": "Weather in Paris, and the time?"}]
    async with AsyncRouterClient(srv.target) as client:
        items = [i async for i in client.generate(messages, tools=[WEATHER, CLOCK])]
        *fragments, result = items
        assert all(isinstance(f, pb.ToolCallDelta) for f in fragments)
        assert isinstance(result, GenerateResult) and result.finish_reason == "tool_calls"
        assert [(c.name, c.args()) for c in result.tool_calls] == [
            ("get_weather", {"city": "Paris"}),
            ("get_time", {}),
        ]
        messages.append(result.as_message())
        for call in result.tool_calls:
            messages.append({"role": "tool", "tool_call_id": call.id, "content": "sunny, 12:00"})
        final = await client.chat(messages, tools=[WEATHER, CLOCK])
    assert (
        final.text == "It is sunny in Paris."
        and final.finish_reason == "stop"
        and not final.tool_calls
    )


async def test_sync_chat_honours_named_tool_and_single_call(start_server):
    """A named tool_choice forces that tool; parallel_tool_calls=False gives one call."""
    srv = await start_server(SCRIPTED)

    def run() -> tuple[GenerateResult, GenerateResult]:
        with RouterClient(srv.target, timeout=30) as client:
            named = client.chat("time?", tools=[WEATHER, CLOCK], tool_choice="get_time")
            single = client.chat("both?", tools=[WEATHER, CLOCK], parallel_tool_calls=False)
            return named, single

    named, single = await asyncio.to_thread(run)
    assert [c.name for c in named.tool_calls] == ["get_time"]
    assert [c.name for c in single.tool_calls] == ["get_weather"]


async def test_tool_result_for_unknown_call_is_refused_naming_the_field(start_server):
    """A tool message answering no call of the conversation is INVALID_ARGUMENT naming it."""
    import grpc

    srv = await start_server(SCRIPTED)
    async with AsyncRouterClient(srv.target) as client:
        with pytest.raises(grpc.RpcError) as err:
            await client.chat(
                [
                    {"role": "user", "content": "hi"},
                    {"role": "tool", "tool_call_id": "nope", "content": "x"},
                ]
            )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "messages[1].tool_call_id" in err.value.details()
