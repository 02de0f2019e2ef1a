"""Edge tool calls on the real SmolLM2: constrained calls, fragment order, stop, seed, counts;
and the full agent loop through a real gRPC router server."""

from __future__ import annotations

import json

import pytest

from backends.llamacpp import LlamaCppBackend, LlamaCppConfig
from router.client import AsyncRouterClient
from router.core import json_schema
from router.core.backend import Finish, TextDelta
from router.core.types import ChatMessage, Request, ToolChoice
from tests.backends.test_llamacpp_grammar import CLOCK, WEATHER
from tests.conftest import SMOLLM2, edge_config

SCHEMAS = {t.name: json_schema.parse_schema(t.parameters) for t in (WEATHER, CLOCK)}
OPENAI_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": t.name,
            "description": t.description,
            "parameters": json.loads(t.parameters),
        },
    }
    for t in (WEATHER, CLOCK)
]


@pytest.fixture
async def backend():
    b = LlamaCppBackend(
        "edge",
        LlamaCppConfig(type="llamacpp", model="m", gguf=SMOLLM2, context_window=1024, threads=2),
    )
    await b.start()
    yield b
    await b.aclose()


def ask(text: str, max_tokens: int = 64, **fields) -> Request:
    return Request(
        "req-0123456789abcdef", "t", (ChatMessage("user", text),), max_tokens, 0.0, **fields
    )


async def calls_of(backend, request: Request):
    events = [e async for e in backend.generate(request)]
    *deltas, finish = events
    assert isinstance(finish, Finish)
    fragments = [c for d in deltas if isinstance(d, TextDelta) for c in d.tool_calls]
    return fragments, finish


@pytest.mark.parametrize("choice", [ToolChoice("required"), ToolChoice("tool", "get_time")])
async def test_constrained_choice_gives_one_valid_call_fragments_in_order(backend, choice):
    """required (two tools offered) and a named tool each give one call: its first fragment
    carries index 0, the id and an offered name (the named one when named), later fragments
    only arguments, which join to JSON valid for that tool's schema; finish is tool_calls."""
    fragments, finish = await calls_of(
        backend, ask("What is the weather in Paris?", tools=(WEATHER, CLOCK), tool_choice=choice)
    )
    first, *rest = fragments
    assert (first.index, first.id, first.arguments) == (0, "call_req-0123456789ab_0", "")
    assert first.name in SCHEMAS and (choice.mode != "tool" or first.name == choice.name)
    assert all(f.index == 0 and not f.id and not f.name for f in rest) and rest
    arguments = "".join(f.arguments for f in rest)
    assert json_schema.validates(SCHEMAS[first.name], arguments), arguments
    assert finish.finish_reason == "tool_calls"


async def test_auto_answers_text_or_a_valid_call(backend):
    """Under auto the answer is either text with no fragments, or calls valid for their tools."""
    fragments, finish = await calls_of(
        backend, ask("What time is it in Tokyo?", tools=(WEATHER, CLOCK))
    )
    if fragments:
        assert finish.finish_reason == "tool_calls" and fragments[0].name in SCHEMAS
        args = "".join(f.arguments for f in fragments[1:])
        assert json_schema.validates(SCHEMAS[fragments[0].name], args), args
    else:
        assert finish.finish_reason in ("stop", "length")


async def test_stop_sequence_cuts_the_text(backend):
    """The text ends before the stop sequence, which never appears, with finish stop."""
    free = "".join(
        [
            e.text
            async for e in backend.generate(ask("Count from one to ten.", 40))
            if isinstance(e, TextDelta)
        ]
    )
    assert "3" in free
    events = [e async for e in backend.generate(ask("Count from one to ten.", 40, stop=("3",)))]
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text == free[: free.index("3")] and events[-1].finish_reason == "stop"


async def test_same_seed_same_text_whatever_ran_before(backend):
    """At temperature 0.9 one seed gives one text, run fresh, again (cached prompt) and after
    another request; another seed gives another text."""

    async def text(seed: int, prompt: str = "Tell me a story.") -> str:
        req = Request("r", "t", (ChatMessage("user", prompt),), 12, 0.9, seed=seed)
        return "".join([e.text async for e in backend.generate(req) if isinstance(e, TextDelta)])

    first = await text(7)
    assert await text(7) == first
    await text(3, "Hi")
    assert await text(7) == first
    assert await text(8) != first


async def test_prompt_tokens_count_the_tools_and_the_schema(backend):
    """count_prompt_tokens grows with each tool offered and with a response schema, and the
    Finish reports the same count the router was given."""
    from router.core.types import ResponseFormat

    plain = backend.count_prompt_tokens(ask("Weather?"))
    one = backend.count_prompt_tokens(ask("Weather?", tools=(WEATHER,)))
    two = backend.count_prompt_tokens(ask("Weather?", tools=(WEATHER, CLOCK)))
    fmt = ResponseFormat("json_schema", "w", WEATHER.parameters, True)
    schema = backend.count_prompt_tokens(ask("Weather?", response_format=fmt))
    assert plain < one < two and plain < schema
    req = ask("Weather?", tools=(WEATHER, CLOCK), tool_choice=ToolChoice("required"))
    _, finish = await calls_of(backend, req)
    assert finish.prompt_tokens == backend.count_prompt_tokens(req)


async def test_full_agent_loop_through_the_router_on_smollm2(start_server):
    """Through a real gRPC server on the edge model: two tools offered with tool_choice
    required give a valid call; its result sent back (as_message + a tool message) gets a
    final text answer with tool_choice none."""
    srv = await start_server(edge_config())
    messages: list = [{"role": "user", "content": "What is the weather in Paris?"}]
    async with AsyncRouterClient(srv.target, timeout=120) as client:
        answer = await client.chat(
            messages, tools=OPENAI_TOOLS, tool_choice="required", max_tokens=64, temperature=0.0
        )
        assert answer.finish_reason == "tool_calls" and len(answer.tool_calls) == 1
        call = answer.tool_calls[0]
        assert call.name in SCHEMAS and json_schema.validates(SCHEMAS[call.name], call.arguments)
        messages.append(answer.as_message())
        messages.append({"role": "tool", "tool_call_id": call.id, "content": "Sunny, 22 C"})
        final = await client.chat(
            messages, tools=OPENAI_TOOLS, tool_choice="none", max_tokens=48, temperature=0.0
        )
    assert final.finish_reason in ("stop", "length") and not final.tool_calls
    assert final.text.strip(), final
    print("final answer:", final.text)
