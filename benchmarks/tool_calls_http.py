"""tool_calls_http: time to a complete tool call through the router vs straight to the server.

The server is a real `python -m llama_cpp.server` on SmolLM2 (its own process), asked for a
named tool (`get_weather`; with SmolLM2's template that server streams a call only for a named
tool_choice). The direct path POSTs the chat-completions body the router's `openai` backend
(dialect `llama_cpp_python`) sends for the same request, with httpx; the routed path is
`tokenrouter serve` (its own process) with that backend, called through the blocking client.
For each run: ms from sending to the first tool-call fragment, to the last one with a piece of
the arguments (llama_cpp.server sends one more, empty, for the token that ends the call, which
the router does not relay), and to the end of the stream (the router's usage message; the
server's `[DONE]`). Runs alternate direct / routed, after warm-ups, so noise hits both alike;
figures are medians. On 2 cores the server's 2 threads share them with the router and the
client, so each relayed fragment also slows the model a little (measured 2026-12-07: added
last-fragment time 18 ms with a 2-thread server, 5 ms with a 1-thread one).

    python -m benchmarks.tool_calls_http [N]     # prints the JSON of http_tool_call_times(N)
"""

from __future__ import annotations

import contextlib
import json
import statistics
import sys
import time
from typing import Any

import httpx

from benchmarks.common import ServerProcess
from benchmarks.harness import Check, Section

PROMPT = "What is the weather in Paris?"
CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
WEATHER = {"name": "get_weather", "description": "The weather in a city.", "parameters": CITY}
CLOCK = {"name": "get_time", "description": "The time now.", "parameters": {"type": "object"}}
MAX_TOKENS = 48
COLUMNS = ["path", "runs", "first_fragment_ms", "last_fragment_ms", "done_ms", "fragments"]

Times = tuple[float, float, float, int, str]  # first, last, done (ms), fragments, arguments


def direct_body() -> dict[str, Any]:
    """The body the router's openai backend (dialect llama_cpp_python) sends for the request."""
    from backends.openai_messages import openai_fields
    from router.core.types import ChatMessage, Request, ToolChoice, ToolSpec

    tools = tuple(
        ToolSpec(t["name"], t["description"], json.dumps(t["parameters"])) for t in (WEATHER, CLOCK)
    )
    request = Request(
        "bench",
        "t",
        (ChatMessage("user", PROMPT),),
        MAX_TOKENS,
        0.0,
        tools=tools,
        tool_choice=ToolChoice("tool", "get_weather"),
    )
    return {
        "model": "smollm2",
        **openai_fields(request, "llama_cpp_python"),
        "max_tokens": MAX_TOKENS,
        "temperature": 0.0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def direct_once(client: httpx.Client, base_url: str, body: dict[str, Any]) -> Times:
    """(first, last, done ms, fragments, joined arguments) of one call straight from the server."""
    start = time.perf_counter()
    first = last = 0.0
    n, args = 0, []
    with client.stream("POST", f"{base_url}/chat/completions", json=body) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            choices = json.loads(line[6:]).get("choices") or [{}]
            calls = choices[0].get("delta", {}).get("tool_calls") or []
            pieces = [c.get("function", {}).get("arguments") or "" for c in calls]
            if any(pieces) or (calls and not first):  # the server ends with an empty piece
                last = time.perf_counter()
                first = first or last
                n += len(calls)
                args += pieces
    done = time.perf_counter()
    ms = [(t - start) * 1e3 for t in (first, last, done)]
    return ms[0], ms[1], ms[2], n, "".join(args)


def routed_once(client: Any) -> Times:
    """(first, last, done ms, fragments, joined arguments) of one call through the router."""
    from router.api import router_pb2 as pb

    start = time.perf_counter()
    first = last = 0.0
    n, args = 0, []
    items = client.generate(
        PROMPT,
        tools=[WEATHER, CLOCK],
        tool_choice="get_weather",
        max_tokens=MAX_TOKENS,
        temperature=0.0,
    )
    for item in items:
        if isinstance(item, pb.ToolCallDelta):
            last = time.perf_counter()
            first = first or last
            n += 1
            args.append(item.arguments)
    done = time.perf_counter()
    ms = [(t - start) * 1e3 for t in (first, last, done)]
    return ms[0], ms[1], ms[2], n, "".join(args)


def _summary(path: str, runs: list[Times]) -> dict[str, Any]:
    valid = 0
    for *_, args in runs:
        with contextlib.suppress(ValueError, AttributeError):
            valid += isinstance(json.loads(args).get("city"), str)
    return {
        "path": path,
        "runs": len(runs),
        "first_fragment_ms": statistics.median(r[0] for r in runs),
        "last_fragment_ms": statistics.median(r[1] for r in runs),
        "done_ms": statistics.median(r[2] for r in runs),
        "fragments": statistics.median(r[3] for r in runs),
        "valid_calls": valid,
    }


def http_tool_call_times(n: int) -> dict[str, Any]:
    """Medians of `n` runs each way (after two warm-ups each): {"direct": row, "routed": row,
    "added_first_ms", "added_last_ms", "added_done_ms"}; a row has first_fragment_ms,
    last_fragment_ms, done_ms, fragments and valid_calls (runs whose arguments parsed to an
    object with a string `city`)."""
    from router.client import RouterClient
    from tests.llamacpp_server import start_llamacpp_server

    direct: list[Times] = []
    routed: list[Times] = []
    body = direct_body()
    with start_llamacpp_server() as llama:
        backend = {
            "type": "openai",
            "base_url": llama.base_url,
            "model": "smollm2",
            "dialect": "llama_cpp_python",
            "context_window": 1024,
            "metrics": "none",
            "timeouts": {"first_token_s": 120, "between_tokens_s": 120},
        }
        config = {"server": {"watch_config": False}, "backends": {"gpu": backend}}
        with (
            ServerProcess.router(config) as server,
            RouterClient(server.target, timeout=300) as client,
            httpx.Client(timeout=120, trust_env=False) as http,
        ):
            for _ in range(2):  # warm both paths and the server's prompt cache
                direct_once(http, llama.base_url, body)
                routed_once(client)
            for _ in range(n):
                direct.append(direct_once(http, llama.base_url, body))
                routed.append(routed_once(client))
    d, r = _summary("httpx -> llama_cpp.server", direct), _summary("through tokenrouter", routed)
    return {
        "direct": d,
        "routed": r,
        "added_first_ms": r["first_fragment_ms"] - d["first_fragment_ms"],
        "added_last_ms": r["last_fragment_ms"] - d["last_fragment_ms"],
        "added_done_ms": r["done_ms"] - d["done_ms"],
    }


def run(quick: bool, runs: int | None = None) -> Section:
    """The harness section: `runs` calls each way (20 by default, 3 when quick)."""
    times = http_tool_call_times(runs or (3 if quick else 20))
    d, r = times["direct"], times["routed"]
    summary = [
        Check.info("HTTP tool call direct, last fragment p50", d["last_fragment_ms"], "ms"),
        Check.info("HTTP tool call added, first fragment p50", times["added_first_ms"], "ms"),
        Check.info("HTTP tool call added, last fragment p50", times["added_last_ms"], "ms"),
    ]
    notes = [
        f"{d['runs']} named get_weather calls each way, alternating, greedy; the llama.cpp "
        "server, the router and this client are separate processes on the same 2 cores."
    ]
    return Section(COLUMNS, [d, r], summary, notes)


if __name__ == "__main__":
    print(json.dumps(http_tool_call_times(int(sys.argv[1]) if len(sys.argv) > 1 else 20), indent=2))
