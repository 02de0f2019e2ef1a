"""An agent loop through a real router gRPC server whose backend is the OpenAI or Anthropic
backend, against FakeUpstream replaying recorded streams: a tool call, the tool's result, then
the text answer; and what the upstream received each turn."""

from __future__ import annotations

from typing import Any

import pytest

from router.api import router_pb2 as pb
from router.client import AsyncRouterClient, GenerateResult
from tests.fakes.fake_upstream import FakeUpstream, Script, load_recording

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
TIMEOUTS = {"connect_s": 2, "first_token_s": 5, "between_tokens_s": 5, "total_s": 30}


def config(kind: str, upstream: FakeUpstream) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": kind, "model": "m", "timeouts": TIMEOUTS}
    if kind == "openai":
        spec.update(base_url=upstream.base_url, metrics="none")
    else:
        spec.update(base_url=upstream.root_url, api_key_env=None)
    return {"backends": {"http": spec}}


@pytest.mark.parametrize(
    ("kind", "call_file", "answer_file", "call_id", "answer"),
    [
        (
            "openai",
            "openai_tool_calls.sse",
            "openai_text_answer.sse",
            "call_Xk2Jb7QmP1sT9dVwZr4nLc8a",
            "The weather in Paris is sunny and 22 °C.",
        ),
        (
            "anthropic",
            "anthropic_text_then_tool.sse",
            "anthropic_text_answer.sse",
            "toolu_01Vq8ZcN3mTkLw5YsR2bXe7D",
            "It's sunny in Paris and 22 °C.",
        ),
    ],
)
async def test_agent_loop_through_the_router(
    start_server, upstream, kind, call_file, answer_file, call_id, answer
):
    """Two tools offered: the streamed call reaches the client as fragments and a complete call
    with finish tool_calls; the tool result goes back upstream in the API's own shape, and the
    text answer ends the loop with finish stop."""
    upstream.script(
        Script(mode="replay", replay=load_recording(call_file)),
        Script(mode="replay", replay=load_recording(answer_file)),
    )
    srv = await start_server(config(kind, upstream))
    messages: list[Any] = [{"role": "user", "content": "What is the weather in Paris?"}]
    async with AsyncRouterClient(srv.target, timeout=30) as client:
        items = [i async for i in client.generate(messages, tools=[WEATHER, CLOCK], max_tokens=64)]
        *streamed, result = items
        assert isinstance(result, GenerateResult) and result.finish_reason == "tool_calls"
        assert any(isinstance(i, pb.ToolCallDelta) for i in streamed)
        [call] = result.tool_calls
        assert (call.id, call.name, call.args()["city"]) == (call_id, "get_weather", "Paris")
        assert result.decision.backend == "http"
        messages.append(result.as_message())
        messages.append({"role": "tool", "tool_call_id": call.id, "content": "sunny, 22 C"})
        final = await client.chat(messages, tools=[WEATHER, CLOCK], max_tokens=64)
    assert final.text == answer and final.finish_reason == "stop" and not final.tool_calls

    first, second = (r.json for r in upstream.requests if r.method == "POST")
    if kind == "openai":
        assert [t["function"]["name"] for t in first["tools"]] == ["get_weather", "get_time"]
        assert first["tool_choice"] == "auto"
        assistant, tool = second["messages"][1:]
        assert assistant["tool_calls"][0]["id"] == call_id
        assert assistant["tool_calls"][0]["function"]["name"] == "get_weather"
        assert tool == {"role": "tool", "content": "sunny, 22 C", "tool_call_id": call_id}
    else:
        assert [t["name"] for t in first["tools"]] == ["get_weather", "get_time"]
        assert first["tool_choice"] == {"type": "auto"}
        assistant, tool = second["messages"][1:]
        assert assistant["role"] == "assistant"
        assert assistant["content"][0] == {
            "type": "text",
            "text": "Let's check the weather in Paris:",
        }
        use = assistant["content"][1]
        assert (use["type"], use["id"], use["input"]["city"]) == ("tool_use", call_id, "Paris")
        assert tool == {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": call_id, "content": "sunny, 22 C"}],
        }


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_an_image_in_a_system_message_is_refused_naming_the_part(
    start_server, upstream, kind
):
    """Through the router, a system-message image on an HTTP backend (which takes none there)
    is INVALID_ARGUMENT naming the part, and nothing is sent upstream."""
    import grpc

    data = config(kind, upstream)
    data["backends"]["http"]["features"] = ["streaming", "tools", "vision"]
    srv = await start_server(data)
    system = {
        "role": "system",
        "content": [
            {"type": "text", "text": "Be brief."},
            {"type": "image_url", "image_url": {"url": "https://example.com/logo.png"}},
        ],
    }
    async with AsyncRouterClient(srv.target, timeout=30) as client:
        with pytest.raises(grpc.RpcError) as err:
            await client.chat([system, {"role": "user", "content": "hi"}], max_tokens=8)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "messages[0].parts[1]" in err.value.details()
    assert not [r for r in upstream.requests if r.method == "POST"]


async def test_strict_json_on_anthropic_through_the_router(start_server, upstream):
    """A strict json_schema request on Anthropic is a forced `place` tool; the replayed call
    reaches the client as the JSON text, finish stop, and the router validates it."""
    upstream.script(Script(mode="replay", replay=load_recording("anthropic_forced_tool.sse")))
    srv = await start_server(config("anthropic", upstream))
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
        "required": ["city", "country"],
    }
    fmt = {
        "type": "json_schema",
        "json_schema": {"name": "place", "schema": schema, "strict": True},
    }
    async with AsyncRouterClient(srv.target, timeout=30) as client:
        answer = await client.chat("Name a city and its country.", response_format=fmt)
    assert answer.text == '{"city": "Lyon", "country": "France"}' and not answer.tool_calls
    assert answer.finish_reason == "stop" and answer.usage.schema_valid is True
    sent = upstream.requests[-1].json
    assert sent["tool_choice"] == {"type": "tool", "name": "place"}
    assert sent["tools"][0]["name"] == "place" and sent["tools"][0]["input_schema"] == schema
