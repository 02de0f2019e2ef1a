"""GBNF grammars for the edge backend: JSON outputs and tool calls by constrained decoding.

A request's grammar depends only on its tools, tool_choice, parallel_tool_calls and
response_format, so it is built once per distinct combination (`grammar_text`, an LRU cache of
the GBNF text) from llama-cpp-python's JSON-Schema converter (llama_cpp.llama_grammar).

The tool-call format the grammar enforces (and the prompt, backends/llamacpp_prompt.py, shows
the model) is one block per call, calls separated by a newline:

    <tool_call>
    {"name": "get_weather", "arguments": {"city": "Paris"}}
    </tool_call>

`name` is one of the offered tools (the named one for a named tool_choice) and `arguments` an
object built from that tool's parameters schema. tool_choice `required` or a named tool: the
whole output is calls; `auto`: calls or text, the grammar applied only once the answer starts
with the call marker (a grammar for "any text not starting with the marker" makes llama.cpp
check every token of the vocabulary against it at each step: 4x slower decoding, measured on
SmolLM2); `none`: no tool grammar. parallel_tool_calls True allows up to MAX_CALLS calls;
unset (this backend's default) or False, one: a small model offered more keeps calling until
max_tokens runs out (SmolLM2-135M does, every time).

The converter covers types, properties/required, enums, consts, anyOf/oneOf, arrays with their
item bounds, string lengths, formats and patterns; what it cannot express (numeric bounds,
`not`, ...) is left to the router's own validation of a strict output (usage.schema_valid). A
schema it refuses outright makes that tool's arguments (or the response) any JSON object.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from router.core.types import ResponseFormat, ToolChoice, ToolSpec

CALL_OPEN = '<tool_call>\n{"name": '
CALL_ARGUMENTS = ', "arguments": '
CALL_CLOSE = "}\n</tool_call>"
CALL_SEPARATOR = "\n"
MAX_CALLS = 4  # calls in one answer when parallel tool calls are allowed
_GRAMMAR_CACHE_SIZE = 256


def tools_in_play(tools: tuple[ToolSpec, ...], choice: ToolChoice) -> tuple[ToolSpec, ...]:
    """The tools the model may call: none for `none`, the named one for a named choice."""
    if choice.mode == "none":
        return ()
    if choice.mode == "tool":
        return tuple(t for t in tools if t.name == choice.name)
    return tools


def _literal(text: str) -> str:
    """`text` as a GBNF string literal."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\n", "\\n").replace("\r", "\\r") + '"'


def _converter() -> Any:
    from llama_cpp.llama_grammar import SchemaConverter

    return SchemaConverter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)


def _visit(converter: Any, schema_text: str, name: str) -> str:
    """The rule for a value matching `schema_text` (any JSON object if the converter refuses)."""
    try:
        schema = converter.resolve_refs(json.loads(schema_text), "input")
        return str(converter.visit(schema, name))
    except Exception:  # a schema beyond the converter (AssertionError, KeyError, ...)
        return str(converter.visit({"type": "object"}, name))


def _calls_rule(tools: tuple[ToolSpec, ...], converter: Any, parallel: bool, opened: int) -> str:
    """Adds the rules of one call to each of `tools`; returns the rule for the calls, the first
    of which has its first `opened` characters already written."""
    alternatives = []
    for i, tool in enumerate(tools):
        args = _visit(converter, tool.parameters, f"tool{i}-args")
        alternatives.append(f"{_literal(json.dumps(tool.name) + CALL_ARGUMENTS)} {args}")
    body = f"({' | '.join(alternatives)}) {_literal(CALL_CLOSE)}"
    converter._rules["call"] = f"{_literal(CALL_OPEN)} {body}"
    first = "call"
    if opened:
        rest = CALL_OPEN[opened:]
        converter._rules["first-call"] = f"{_literal(rest)} {body}" if rest else body
        first = "first-call"
    if not parallel:
        return first
    more = ""
    for _ in range(MAX_CALLS - 1):
        more = f"({_literal(CALL_SEPARATOR)} call {more})?"
    return f"{first} {more}"


@functools.lru_cache(maxsize=_GRAMMAR_CACHE_SIZE)
def grammar_text(
    tools: tuple[ToolSpec, ...],
    choice: ToolChoice,
    parallel: bool | None,
    response_format: ResponseFormat,
    opened: int | None = None,
) -> str | None:
    """The GBNF (root rule `root`) constraining a request's output, or None for free text.

    With tools in play: `required` or a named tool, calls; `auto` with a JSON response format,
    calls or that JSON; `auto` with text, None: the answer starts free and, once it starts with
    the call marker, continues under the grammar for `opened` characters of a call already
    written (the backend restarts the generation there; see backends/llamacpp_run.py). Without
    tools, the response format's grammar, or None for text.
    """
    converter = _converter()
    offered = tools_in_play(tools, choice)
    fmt = response_format
    if fmt.type == "json_schema" and fmt.schema:
        response: str | None = _visit(converter, fmt.schema, "response")
    elif fmt.type in ("json_object", "json_schema"):
        response = _visit(converter, '{"type": "object"}', "response")
    else:
        response = None
    if offered and opened is not None:
        root = _calls_rule(offered, converter, parallel is True, opened)
    elif offered and choice.mode != "auto":
        root = _calls_rule(offered, converter, parallel is True, 0)
    elif offered and response is not None:
        root = f"{_calls_rule(offered, converter, parallel is True, 0)} | {response}"
    elif response is not None and not offered:
        root = response
    else:
        return None
    converter._rules["root"] = root
    return str(converter.format_grammar())
