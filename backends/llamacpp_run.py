"""One generation on an edge model instance, in its worker thread.

The request's sampling fields: `top_p` (default 0.95), `seed` (its own, or the configured one:
every request sets it, so none leaks into the next), `stop` (backends/llamacpp_stream.StopFilter)
and the grammar of its tools or response format (backends/llamacpp_grammar.py).

tool_choice `auto` without a JSON format starts unconstrained: while the answer could still be
the call marker (`<tool_call>`) its tokens are held back; once it has diverged it is text, and
once it starts with the marker the generation restarts from the tokens that spell a prefix of
the call's opening, under the grammar of calls (llama.cpp reuses the evaluated prompt, so the
restart costs one token's evaluation). A model that answers in text pays nothing for the tools.
"""

from __future__ import annotations

import codecs
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from backends.llamacpp_grammar import CALL_OPEN, tools_in_play
from backends.llamacpp_stream import CallParser, Output, StopFilter
from router.core.backend import Finish
from router.core.errors import InvalidArgument
from router.core.types import Request

if TYPE_CHECKING:
    from backends.llamacpp import _Instance

_SEED_MODULUS = 0xFFFFFFFF  # llama.cpp seeds are uint32; 0xFFFFFFFF itself means "random"
_MARKER = CALL_OPEN[: CALL_OPEN.index(">") + 1]  # "<tool_call>"


def _sample(
    instance: _Instance, tokens: list[int], request: Request, grammar: Any
) -> Iterator[int]:
    """llama.cpp's token stream for `tokens`, with the request's sampling fields.

    llama.cpp reuses the longest prefix the context already holds and, when that is the whole
    prompt, evaluates its last token again on its own. A token decoded alone gets other logits
    than in a batch (up to 0.6 apart on SmolLM2 Q4_1: another kernel), so the same prompt and
    seed would give other text depending on what ran before. The context is cut back so that
    at least the last two prompt tokens are always evaluated together: the same logits (a
    batch of 2 and of 35 give identical ones) whatever the cache held.
    """
    llm = instance.llm
    keep = len(tokens) - 2
    if llm.n_tokens > keep >= 0:
        llm.n_tokens = keep
    top_p = 0.95 if request.top_p is None else request.top_p
    return llm.generate(
        tokens,
        temp=request.temperature,
        top_k=40,
        top_p=top_p,
        min_p=0.05,
        reset=True,
        grammar=grammar,
    )


def _call_prefix(instance: _Instance, held: list[int]) -> tuple[list[int], str]:
    """The longest run of `held` tokens (from the first) spelling a prefix of a call's opening."""
    kept = 0
    text = ""
    for n in range(1, len(held) + 1):
        try:
            candidate = b"".join(instance.pieces[t] or b"" for t in held[:n]).decode()
        except UnicodeDecodeError:
            continue
        if not CALL_OPEN.startswith(candidate):
            break
        kept, text = n, candidate
    return held[:kept], text


def run(
    instance: _Instance, request: Request, cancel: threading.Event, emit: Callable[[Any], None]
) -> None:
    """Generates in the calling (worker) thread, emitting events until done or cancelled."""
    try:
        begun, prefill_ms = time.perf_counter(), 0.0
        tokens = instance.prompt_tokens(request)
        if len(tokens) + request.max_tokens > instance.n_ctx:
            raise InvalidArgument(
                "messages",
                f"prompt of {len(tokens)} tokens + max_tokens {request.max_tokens} exceeds the "
                f"context window of {instance.n_ctx}",
            )
        grammar = instance.grammar(request)
        parser = None
        if tools_in_play(request.tools, request.tool_choice):
            parser = CallParser(request.request_id, request.tool_choice.mode == "auto")
        lazy = parser is not None and grammar is None  # auto: constrained once a call begins
        out = Output(emit, parser, StopFilter(request.stop))
        seed = instance.default_seed if request.seed is None else request.seed % _SEED_MODULUS
        instance.llm.set_seed(seed)
        decode = codecs.getincrementaldecoder("utf-8")(errors="replace").decode
        pieces, limit = instance.pieces, request.max_tokens
        completion, finish = 0, "length"
        held: list[int] = []  # auto: tokens that may still be the call marker's start
        held_text = ""
        stream = _sample(instance, tokens, request, grammar)
        while True:
            token = next(stream, None)
            if token is None or cancel.is_set():
                finish = "stop" if token is None else "cancelled"
                break
            piece = pieces[token] if token in pieces else instance.piece(token)
            if piece is None:
                finish = "stop"
                break
            completion += 1
            if completion == 1:
                prefill_ms = (time.perf_counter() - begun) * 1e3
            text = decode(piece)
            if lazy:
                held.append(token)
                held_text += text
                if held_text.startswith(_MARKER):  # a call: restart under its grammar
                    kept, kept_text = _call_prefix(instance, held)
                    stream.close()
                    opened = instance.grammar(request, opened=len(kept_text))
                    stream = _sample(instance, tokens + kept, request, opened)
                    decode = codecs.getincrementaldecoder("utf-8")(errors="replace").decode
                    completion, lazy, held = len(kept), False, []
                    out.add(kept_text, len(kept))
                    continue
                if _MARKER.startswith(held_text) and completion < limit:
                    continue
                lazy = False
                out.add(held_text, len(held))
                held = []
            else:
                out.add(text, 1)
            if out.stopped:
                finish = "stop"
                break
            if completion >= limit:
                break
        stream.close()
        if held:
            out.add(held_text, len(held))
        out.close(decode(b"", final=True))
        if finish == "stop" and parser is not None and parser.calls and not out.stopped:
            finish = "tool_calls"
        emit(Finish(len(tokens), completion, finish, prefill_ms))
    except BaseException as exc:  # handed to the event loop, raised there
        emit(exc)
