"""The OpenAI-compatible backend against a real llama.cpp server (llama-cpp-python's server).

That server sends no usage in streams (it ignores stream_options), has no /health, /slots or
/metrics, and runs one generation at a time (see the `llamacpp_server` fixture).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from router.client import AsyncRouterClient
from router.core.backend import TextDelta
from router.core.types import ChatMessage, Request, ToolChoice, ToolSpec
from tests.backends.test_openai_compat import collect, make_backend, make_request
from tests.conftest import gpu_config

# Generous: 2 threads on a shared 2-core machine can slow llama.cpp down a lot.
LLAMACPP = {"first_token_s": 120.0, "between_tokens_s": 120.0}


async def test_streams_real_text_from_llamacpp_server(llamacpp_server):
    """Real tokens stream from llama_cpp.server; it sends no usage, so counts are chunks and an
    estimate of the prompt."""
    b = make_backend(llamacpp_server.base_url, timeouts=LLAMACPP)
    request = make_request("Say hello.", max_tokens=8)
    *deltas, finish = await collect(b, request)
    await b.aclose()
    assert deltas and all(isinstance(d, TextDelta) for d in deltas)
    assert "".join(d.text for d in deltas).strip()
    assert finish.prompt_tokens > 0
    assert finish.completion_tokens == sum(d.tokens for d in deltas) <= 8
    assert finish.finish_reason in ("stop", "length")


async def test_concurrent_requests_to_llamacpp_server_all_complete(llamacpp_server):
    """Concurrent streams queue on the server and each completes with its own finish reason."""
    b = make_backend(llamacpp_server.base_url, timeouts=LLAMACPP)
    results = await asyncio.gather(*(collect(b, make_request(max_tokens=6)) for _ in range(2)))
    await b.aclose()
    for *deltas, finish in results:
        assert finish.completion_tokens == sum(d.tokens for d in deltas) > 0
        assert finish.finish_reason in ("stop", "length")


async def test_probe_llamacpp_server(llamacpp_server):
    """probe() with metrics 'llamacpp' succeeds (no /health or /slots there: /v1/models answers)."""
    b = make_backend(llamacpp_server.base_url, metrics="llamacpp")
    load = await b.probe()
    await b.aclose()
    assert load.in_flight == 0 and b.metrics == {}


# The agent vocabulary against the real server. With SmolLM2's chat template, llama_cpp.server
# streams tool calls only for a named tool_choice (it builds a grammar for that tool's
# arguments); the "chatml-function-calling" chat format cannot stream, so the loop names its tool.
CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
WEATHER = ToolSpec("get_weather", "The weather in a city.", json.dumps(CITY))
WEATHER_TOOL = {"name": "get_weather", "description": "The weather in a city.", "parameters": CITY}
CLOCK_TOOL = {"name": "get_time", "description": "The time now.", "parameters": {"type": "object"}}
COUNTRY = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
    "required": ["city", "country"],
}


def router_config(base_url: str) -> dict[str, Any]:
    """The router's config with one cloud-GPU backend on the llama.cpp server."""
    return gpu_config(base_url)


async def test_named_tool_call_streams_from_llamacpp_server(llamacpp_server):
    """A named tool_choice gives a streamed call: id and name once, then argument fragments that
    join to a JSON object fitting the tool's schema, and finish tool_calls."""
    b = make_backend(llamacpp_server.base_url, timeouts=LLAMACPP, dialect="llama_cpp_python")
    request = Request(
        "req-tool",
        "t",
        (ChatMessage("user", "What is the weather in Paris?"),),
        48,
        0.0,
        tools=(WEATHER,),
        tool_choice=ToolChoice("tool", "get_weather"),
    )
    *deltas, finish = await collect(b, request)
    await b.aclose()
    fragments = [c for d in deltas for c in d.tool_calls]
    assert len(fragments) > 1 and {c.index for c in fragments} == {0}
    assert fragments[0].id and fragments[0].name == "get_weather"
    assert not any(c.id or c.name for c in fragments[1:])
    args = json.loads("".join(c.arguments for c in fragments))
    assert isinstance(args, dict) and isinstance(args["city"], str)
    assert finish.finish_reason == "tool_calls"


async def test_agent_loop_through_router_to_llamacpp_server(llamacpp_server, start_server):
    """Through a real router: two tools offered, the named one called, its result sent back
    (as the OpenAI shape llama_cpp.server takes), then a text answer with finish stop."""
    srv = await start_server(router_config(llamacpp_server.base_url))
    tools = [WEATHER_TOOL, CLOCK_TOOL]
    messages: list[Any] = [{"role": "user", "content": "What is the weather in Paris?"}]
    async with AsyncRouterClient(srv.target, timeout=300) as client:
        called = await client.chat(
            messages, tools=tools, tool_choice="get_weather", max_tokens=48, temperature=0.0
        )
        assert called.finish_reason == "tool_calls" and called.decision.backend == "gpu"
        [call] = called.tool_calls
        assert call.name == "get_weather" and isinstance(call.args()["city"], str)
        messages.append(called.as_message())
        messages.append({"role": "tool", "tool_call_id": call.id, "content": "Sunny, 22 C."})
        final = await client.chat(messages, tools=tools, max_tokens=32, temperature=0.0)
    assert final.text.strip() and not final.tool_calls
    assert final.finish_reason in ("stop", "length")


async def test_json_schema_output_from_llamacpp_server_validates(llamacpp_server, start_server):
    """A strict json_schema request through the router gives JSON fitting the schema (the
    server's grammar) and the router says it validated."""
    srv = await start_server(router_config(llamacpp_server.base_url))
    fmt = {
        "type": "json_schema",
        "json_schema": {"name": "place", "schema": COUNTRY, "strict": True},
    }
    async with AsyncRouterClient(srv.target, timeout=300) as client:
        answer = await client.chat(
            "Name a city and its country.", response_format=fmt, max_tokens=64, temperature=0.0
        )
    doc = json.loads(answer.text)
    assert isinstance(doc["city"], str) and isinstance(doc["country"], str)
    assert answer.usage.schema_valid is True and answer.finish_reason == "stop"
