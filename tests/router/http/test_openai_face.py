"""The OpenAI face's answers: chunk streams checked against OpenAI's recorded streams
(tests/fakes/data/openai_*.sse) and read back by the openai SDK's own accumulator, completion
bodies, error objects, and the /v1/models list."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from backends.sse import SseParser
from router.config import Config
from router.core.backend import TextDelta, ToolCallDelta
from router.core.types import Decision, Privacy, Tier, Usage
from router.http.face import Face
from router.http.openai_face import OpenAIFace, model_names, models_list
from router.http.openai_request import OpenAIOptions

DATA = Path(__file__).parents[2] / "fakes" / "data"
HEAD = {"id", "object", "created", "model", "system_fingerprint", "choices", "usage"}
NOT_OURS = {"service_tier", "obfuscation", "tokenrouter"}  # OpenAI's extras, and ours


def decision(model: str = "smollm2") -> Decision:
    return Decision(
        "rid1", "edge", model, Tier.EDGE, "default", Privacy.INTERNAL, 10, 0.0, 5.0, "single", 42,
        (), config_version="v123",
    )  # fmt: skip


def usage(reason: str = "stop", prompt: int = 12, completion: int = 5) -> Usage:
    return Usage(prompt, completion, 0.001, "edge", reason, 3.0, 9.0, ["edge"])


def events(data: bytes) -> list[str]:
    """The data of each SSE event in `data` (the project's SSE parser)."""
    parser = SseParser("test")
    out = [payload for _, payload in parser.feed(data)]
    assert "[DONE]" not in out[:-1] and parser.done == (out[-1:] == ["[DONE]"])
    return out


def recorded(name: str) -> list[str]:
    return events((DATA / name).read_bytes())


def replayed(chunks: list[str]) -> tuple[list[TextDelta], Usage]:
    """The TextDeltas (and usage) a backend would relay for a recorded OpenAI stream."""
    deltas: list[TextDelta] = []
    reason, counts = "", (0, 0)
    for data in chunks[:-1]:
        chunk = json.loads(data)
        if chunk["usage"]:
            counts = chunk["usage"]["prompt_tokens"], chunk["usage"]["completion_tokens"]
        for choice in chunk["choices"]:
            reason = choice["finish_reason"] or reason
            delta = choice["delta"]
            calls = tuple(
                ToolCallDelta(
                    c["index"],
                    c.get("id", ""),
                    c["function"].get("name", ""),
                    c["function"].get("arguments", ""),
                )
                for c in delta.get("tool_calls") or ()
            )
            if delta.get("content") or calls:
                deltas.append(TextDelta(delta.get("content") or "", 1, calls))
    return deltas, usage(reason, *counts)


def encode(deltas: list[TextDelta], end: Usage, include_usage: bool = True) -> bytes:
    face = OpenAIFace()
    parsed = face.parse({"model": "auto", "messages": [{"role": "user", "content": "hi"}]})
    parsed.options = OpenAIOptions(include_usage=include_usage)
    encoder = face.encoder(parsed, "rid1")
    parts = [encoder.start(decision())]
    parts.extend(encoder.delta(d) for d in deltas)
    parts.append(encoder.finish(end))
    return b"".join(parts)


def shape(chunks: list[str]) -> list[tuple[Any, ...]]:
    """The stream's structure: per chunk its head keys, then role / content / each tool-call
    fragment's keys / finish reason / usage keys, in order; ids and texts left out."""
    out: list[tuple[Any, ...]] = []
    for data in chunks:
        if data == "[DONE]":
            out.append(("done",))
            continue
        chunk = json.loads(data)
        assert set(chunk) - NOT_OURS == HEAD and chunk["object"] == "chat.completion.chunk"
        if not chunk["choices"]:
            out.append(("usage", sorted(k for k in chunk["usage"] if "details" not in k)))
            continue
        assert chunk["usage"] is None
        (choice,) = chunk["choices"]
        assert set(choice) == {"index", "delta", "logprobs", "finish_reason"}
        delta = choice["delta"]
        if "role" in delta:
            out.append(("role", delta["role"]))
        if delta.get("content"):
            out.append(("content",))
        for call in delta.get("tool_calls") or ():
            out.append(("call", sorted(call), sorted(call["function"])))
        if choice["finish_reason"]:
            out.append(("finish", choice["finish_reason"], sorted(delta)))
    return out


@pytest.mark.parametrize(
    "name", ["openai_text_answer.sse", "openai_tool_calls.sse", "openai_parallel_tool_calls.sse"]
)
def test_streams_have_the_recorded_structure(name: str) -> None:
    """Relaying a recorded stream's deltas gives the same sequence of chunks: the role first,
    content or tool-call fragments with the recorded keys, the finish chunk, the usage chunk
    with empty choices (usage null before it), then [DONE]."""
    original = recorded(name)
    deltas, end = replayed(original)
    ours = events(encode(deltas, end))
    assert shape(ours) == shape(original)


def test_the_openai_sdk_reads_the_stream_back_to_the_same_answer() -> None:
    """The SDK's stream accumulator, fed our chunks, assembles the recorded calls' ids, names
    and arguments, the finish reason and the usage."""
    deltas, end = replayed(recorded("openai_parallel_tool_calls.sse"))
    state = ChatCompletionStreamState()
    for data in events(encode(deltas, end))[:-1]:
        state.handle_chunk(ChatCompletionChunk.model_validate(json.loads(data)))
    final = state.get_final_completion()
    calls = final.choices[0].message.tool_calls
    assert [json.loads(c.function.arguments)["city"] for c in calls] == ["Paris", "Tokyo"]
    assert [c.function.name for c in calls] == ["get_weather", "get_weather"]
    assert all(c.id.startswith("call_") for c in calls)
    assert final.choices[0].finish_reason == "tool_calls"
    assert final.usage.total_tokens == end.prompt_tokens + end.completion_tokens
    assert final.id == "chatcmpl-rid1" and final.model == "smollm2"
    assert final.system_fingerprint == "v123"


def test_the_decision_rides_on_the_first_and_last_chunks() -> None:
    """The first chunk has `tokenrouter` without costs, the last (the usage chunk) with the cost,
    times and backends tried; chunks between have none."""
    chunks = [json.loads(d) for d in events(encode([TextDelta("hi")], usage()))[:-1]]
    first, last = chunks[0]["tokenrouter"], chunks[-1]["tokenrouter"]
    assert first["backend"] == "edge" and first["config_version"] == "v123"
    assert "cost_usd" not in first
    assert last["cost_usd"] == 0.001 and last["backends_tried"] == ["edge"]
    assert all("tokenrouter" not in c for c in chunks[1:-1])


def test_without_include_usage_there_is_no_usage_chunk() -> None:
    """No usage keys at all; the finish chunk is last before [DONE] and carries `tokenrouter`
    with the cost."""
    chunks = events(encode([TextDelta("a"), TextDelta("b")], usage("length"), False))
    assert chunks[-1] == "[DONE]"
    parsed = [json.loads(d) for d in chunks[:-1]]
    assert all("usage" not in c for c in parsed)
    assert [c["choices"][0]["delta"].get("content") for c in parsed] == ["", "a", "b", None]
    assert parsed[-1]["choices"][0]["finish_reason"] == "length"
    assert parsed[-1]["tokenrouter"]["cost_usd"] == 0.001


def test_fragments_of_one_call_in_one_delta_are_joined_and_the_call_starts_once() -> None:
    """Two fragments of call 0 in one delta give one entry with id, type and name; a later
    fragment repeating the id is sent as arguments only; a call without an id gets one."""
    face = OpenAIFace()
    parsed = face.parse({"messages": [{"role": "user", "content": "hi"}]})
    encoder = face.encoder(parsed, "rid9")
    encoder.start(decision())
    first = encoder.delta(
        TextDelta("", 1, (ToolCallDelta(0, "c0", "f"), ToolCallDelta(0, "", "", '{"a"')))
    )
    again = encoder.delta(
        TextDelta("", 1, (ToolCallDelta(0, "c0", "f", ":1}"), ToolCallDelta(1, "", "g")))
    )
    (call,) = json.loads(events(first)[0])["choices"][0]["delta"]["tool_calls"]
    assert call == {
        "index": 0,
        "id": "c0",
        "type": "function",
        "function": {"name": "f", "arguments": '{"a"'},
    }
    later, new = json.loads(events(again)[0])["choices"][0]["delta"]["tool_calls"]
    assert later == {"index": 0, "function": {"arguments": ":1}"}}
    assert new["id"] == "call_rid9_1" and new["function"]["name"] == "g"
    assert encoder.delta(TextDelta("", 1)) == b""


def test_an_in_stream_error_is_an_error_event_without_done() -> None:
    """After the first token a failure is `data: {"error": {...}}` (what the SDK raises
    APIError on) with OpenAI's type for the status, and no [DONE]."""
    face = OpenAIFace()
    encoder = face.encoder(face.parse({"messages": [{"role": "user", "content": "x"}]}), "r")
    encoder.start(decision())
    data = encoder.error(503, "backend edge: connection lost")
    (event,) = events(data)
    assert json.loads(event) == {
        "error": {
            "message": "backend edge: connection lost",
            "type": "api_error",
            "param": None,
            "code": None,
        }
    }


def collect(deltas: list[TextDelta], end: Usage) -> dict[str, Any]:
    face = OpenAIFace()
    collector = face.collector(face.parse({"messages": [{"role": "user", "content": "x"}]}), "r7")
    for d in deltas:
        collector.delta(d)
    return json.loads(collector.body(decision("m1"), end))


def test_a_text_completion_body() -> None:
    """A chat.completion with the joined text, finish reason, usage, fingerprint and decision
    field, which the SDK's ChatCompletion model reads."""
    body = collect([TextDelta("Hello"), TextDelta(" there")], usage("stop", 4, 2))
    completion = ChatCompletion.model_validate(body)
    assert completion.id == "chatcmpl-r7" and completion.object == "chat.completion"
    assert completion.model == "m1" and completion.system_fingerprint == "v123"
    (choice,) = completion.choices
    assert choice.message.content == "Hello there" and choice.message.role == "assistant"
    assert choice.finish_reason == "stop" and choice.message.tool_calls is None
    assert body["choices"][0]["message"]["refusal"] is None
    assert body["choices"][0]["logprobs"] is None
    counts = completion.usage
    assert (counts.prompt_tokens, counts.completion_tokens, counts.total_tokens) == (4, 2, 6)
    assert completion.model_extra["tokenrouter"]["total_ms"] == 9.0


def test_a_tool_call_completion_body() -> None:
    """Fragments by index become whole calls in index order; content is null without text."""
    deltas, end = replayed(recorded("openai_parallel_tool_calls.sse"))
    body = collect(deltas, end)
    message = body["choices"][0]["message"]
    assert message["content"] is None and body["choices"][0]["finish_reason"] == "tool_calls"
    calls = ChatCompletion.model_validate(body).choices[0].message.tool_calls
    assert [json.loads(c.function.arguments) for c in calls] == [
        {"city": "Paris"},
        {"city": "Tokyo"},
    ]
    assert calls[0].id == "call_R4tYp9LmW2qE6sJzN1vKb3Hx" and calls[0].type == "function"


def test_an_unknown_finish_reason_reads_as_stop() -> None:
    """A cancelled generation's reason is not OpenAI's: it is answered as stop."""
    assert collect([TextDelta("x")], usage("cancelled"))["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize(
    ("status", "param", "kind", "code"),
    [
        (400, "messages[0].role", "invalid_request_error", None),
        (401, None, "authentication_error", "invalid_api_key"),
        (403, None, "permission_error", None),
        (404, "model", "invalid_request_error", "model_not_found"),
        (404, None, "invalid_request_error", "not_found"),
        (405, None, "invalid_request_error", None),
        (413, None, "invalid_request_error", "request_too_large"),
        (429, None, "rate_limit_error", "rate_limit_exceeded"),
        (500, None, "server_error", None),
        (503, None, "api_error", None),
        (504, None, "api_error", None),
    ],
)
def test_error_bodies_have_openais_types(
    status: int, param: str | None, kind: str, code: str | None
) -> None:
    """Each status gets OpenAI's error type (and code), the message and the field."""
    body = json.loads(OpenAIFace().error_body(status, "what went wrong", param))
    assert body == {
        "error": {"message": "what went wrong", "type": kind, "param": param, "code": code}
    }


def test_models_lists_auto_then_every_model_and_alias_once() -> None:
    """`auto` first, then each backend's model and aliases in config order, no repeats."""
    config = Config.model_validate(
        {
            "backends": {
                "a": {"type": "scripted", "model": "m1", "aliases": ["fast", "cheap"]},
                "b": {"type": "scripted", "model": "m2", "aliases": ["fast"]},
                "c": {"type": "scripted", "model": "m1"},
            }
        }
    )
    assert model_names(config) == ["auto", "m1", "fast", "cheap", "m2"]
    listing = models_list(config, created=1700000000)
    assert listing["object"] == "list"
    assert listing["data"][1] == {
        "id": "m1",
        "object": "model",
        "created": 1700000000,
        "owned_by": "tokenrouter",
    }


def test_the_face_follows_the_contract() -> None:
    """OpenAIFace is a Face: its name, and parse giving the stream flag, model and options."""
    face: Face = OpenAIFace()
    parsed = face.parse(
        {
            "model": "m1",
            "messages": [{"role": "user", "content": "x"}],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    )
    assert face.name == "openai" and parsed.stream and parsed.model == "m1"
    assert parsed.request.model == "m1" and parsed.options == OpenAIOptions(True)
