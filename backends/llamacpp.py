"""Edge backend: GGUF models in-process through llama-cpp-python.

A bounded pool of model instances (`replicas`) serves one generation each; requests beyond the
pool wait in a queue of at most `max_queue`, and beyond that are refused at once. Generation runs
in worker threads, never on the event loop; closing the stream stops generation at the next token,
and the instance returns to the pool only when its thread has let go of it.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field

from backends import llamacpp_run
from backends.gguf import resolve_gguf
from backends.llamacpp_grammar import grammar_text, tools_in_play
from backends.llamacpp_prompt import plain_prompt, template_knows_tool_role, template_messages
from backends.thread_relay import ThreadRelay
from router.core.backend import Backend, Load, StreamEvent, TextDelta, ToolCallDelta
from router.core.backend_config import BackendCommon, Feature
from router.core.errors import InvalidArgument, ResourceExhausted
from router.core.types import ChatMessage, Request, Tier
from router.core.workers import cpu_share

_END = object()
_PROMPT_CACHE_SIZE = 64  # prompts; enough for every request in flight or queued
_PROMPT_CACHE_MAX_TOKENS = 16384  # longer prompts are not kept
_GRAMMAR_CACHE_SIZE = 64  # grammars llama.cpp has checked, by text


class LlamaCppConfig(BackendCommon):
    """An in-process GGUF model on CPU through llama-cpp-python."""

    type: Literal["llamacpp"]
    gguf: str = Field(
        min_length=1,
        description="a GGUF file path, or package:<distribution>/<file> for a GGUF a package ships",
    )
    context_window: int = Field(2048, gt=0, le=1_048_576)
    replicas: int = Field(1, ge=1, le=64, description="model instances; one generation each")
    max_queue: int = Field(16, ge=0, description="requests that may wait for a free instance")
    threads: int | None = Field(
        None, ge=1, description="CPU threads per instance; default: the cores / serve --workers"
    )
    batch_size: int = Field(512, ge=1)
    seed: int = Field(-1, description="sampling seed; -1 for random")
    features: list[Feature] = Field(
        default_factory=lambda: ["streaming", "tools", "json_mode", "json_schema"]
    )

    @property
    def tier(self) -> Tier:
        return Tier.EDGE

    @property
    def simulated_capacity(self) -> tuple[int, int]:
        return self.replicas, self.replicas + self.max_queue

    def problems(self) -> list[tuple[tuple[str, ...], str]]:
        """The GGUF must be resolvable (a file, or one an installed package ships)."""
        try:
            resolve_gguf(self.gguf)
        except FileNotFoundError as exc:
            return [(("gguf",), str(exc))]
        return []


@dataclass
class _Caches:
    """What the instances of one backend share (plain dict operations, safe under the GIL)."""

    prompts: OrderedDict[Any, list[int]] = field(default_factory=OrderedDict)
    grammars: OrderedDict[str, Any] = field(default_factory=OrderedDict)


def _prompt_key(request: Request) -> Any:
    """What the prompt depends on: the messages, and the tools and format when there are any."""
    if not request.tools and request.response_format.type == "text":
        return request.messages
    return (
        request.messages,
        request.tools,
        request.tool_choice,
        request.parallel_tool_calls,
        request.response_format,
    )


class _Instance:
    """One llama.cpp model context and its chat formatter; used by one thread at a time."""

    def __init__(self, config: LlamaCppConfig, path: str, caches: _Caches) -> None:
        self.caches = caches  # shared by the backend's instances (same model, same tokens)
        import llama_cpp  # heavy import, done off the event loop
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.llm = llama_cpp.Llama(
            model_path=path,
            n_ctx=config.context_window,
            n_threads=config.threads or cpu_share(),
            n_batch=min(config.batch_size, config.context_window),
            seed=config.seed if config.seed >= 0 else llama_cpp.LLAMA_DEFAULT_SEED,
            verbose=False,
        )
        self.default_seed = config.seed if config.seed >= 0 else llama_cpp.LLAMA_DEFAULT_SEED
        self.n_ctx = self.llm.n_ctx()
        vocab = self.llm._model.vocab
        self.is_eog: Callable[[int], bool] = lambda tok: bool(
            llama_cpp.llama_vocab_is_eog(vocab, tok)
        )
        # Each token's text bytes, or None for an end-of-generation token, learnt as they appear:
        # a dict lookup per generated token instead of two calls into llama.cpp.
        self.pieces: dict[int, bytes | None] = {}
        template = self.llm.metadata.get("tokenizer.chat_template")
        self.formatter = None
        self.tool_role = bool(template) and template_knows_tool_role(template)
        if template:
            self.formatter = Jinja2ChatFormatter(
                template=template,
                eos_token=self._token_text(self.llm.token_eos()),
                bos_token=self._token_text(self.llm.token_bos()),
            )

    def piece(self, token: int) -> bytes | None:
        """The token's text (bytes, possibly part of a character), None if it ends generation."""
        piece = None if self.is_eog(token) else self.llm.detokenize([token], special=False)
        self.pieces[token] = piece
        return piece

    def _token_text(self, token: int) -> str:
        return self.llm._model.token_get_text(token) if token >= 0 else ""

    def prompt_tokens(self, request: Request) -> list[int]:
        """The prompt's tokens, from the cache when the router already counted them."""
        key = _prompt_key(request)
        cache = self.caches.prompts
        tokens = cache.get(key)
        if tokens is None:
            tokens = self._tokenize(request)
            if len(tokens) <= _PROMPT_CACHE_MAX_TOKENS:
                cache[key] = tokens
            while len(cache) > _PROMPT_CACHE_SIZE:
                cache.popitem(last=False)
        return tokens

    def _tokenize(self, request: Request) -> list[int]:
        """Applies the GGUF's chat template (or a plain fallback) and tokenizes the prompt."""
        messages = template_messages(request, self.tool_role)
        if self.formatter is not None:
            result = self.formatter(messages=messages)
            return self.llm.tokenize(
                result.prompt.encode(), add_bos=not result.added_special, special=True
            )
        return self.llm.tokenize(plain_prompt(messages).encode(), add_bos=True, special=False)

    def grammar(self, request: Request, opened: int | None = None) -> Any:
        """The request's LlamaGrammar (None for free text), checked by llama.cpp once per text;
        `opened`: the grammar of the calls once that much of the first one is written."""
        text = grammar_text(
            request.tools,
            request.tool_choice,
            request.parallel_tool_calls,
            request.response_format,
            opened,
        )
        if text is None:
            return None
        cache = self.caches.grammars
        grammar = cache.get(text)
        if grammar is None:
            import llama_cpp
            from llama_cpp.llama_grammar import LlamaGrammar

            sampler = llama_cpp.llama_sampler_init_grammar(
                self.llm._model.vocab, text.encode(), b"root"
            )
            if not sampler:
                field = (
                    "tools"
                    if tools_in_play(request.tools, request.tool_choice)
                    else ("response_format.schema")
                )
                raise InvalidArgument(field, "llama.cpp cannot compile its grammar")
            llama_cpp.llama_sampler_free(sampler)
            grammar = cache[text] = LlamaGrammar.from_string(text, verbose=False)
            while len(cache) > _GRAMMAR_CACHE_SIZE:
                cache.popitem(last=False)
        else:
            cache.move_to_end(text)
        return grammar

    def warm_up(self) -> None:
        """Evaluates a tiny prompt once, so the first real request does not pay for the set-up."""
        tokens = self.prompt_tokens(Request("warm-up", "", (ChatMessage("user", "Hi"),), 1, 0.0))
        for _ in self.llm.generate(tokens, temp=0.0, reset=True):
            break

    def run(self, request: Request, cancel: threading.Event, emit: Callable[[Any], None]) -> None:
        """Generates (backends/llamacpp_run.py) in the calling worker thread, then ends."""
        try:
            llamacpp_run.run(self, request, cancel, emit)
        finally:
            emit(_END)


def _coalesced(items: list[Any]) -> list[Any]:
    """The items the worker emitted since the loop last looked, consecutive deltas merged into one
    (their texts joined, their tool-call fragments kept in order, their token counts summed), so
    a loop turn yields each kind once."""
    if len(items) == 1:
        return items
    out: list[Any] = []
    texts: list[str] = []
    calls: list[ToolCallDelta] = []
    tokens = 0
    for item in items:
        if type(item) is TextDelta:
            texts.append(item.text)
            calls.extend(item.tool_calls)
            tokens += item.tokens
            continue
        if texts:
            out.append(TextDelta("".join(texts), tokens, tuple(calls)))
            texts, calls, tokens = [], [], 0
        out.append(item)
    if texts:
        out.append(TextDelta("".join(texts), tokens, tuple(calls)))
    return out


class LlamaCppBackend(Backend):
    """In-process GGUF model pool; see the module docstring."""

    config_model = LlamaCppConfig
    config: LlamaCppConfig

    def __init__(self, name: str, config: LlamaCppConfig) -> None:
        super().__init__(name, config)
        self._instances: list[_Instance] = []
        self._free: asyncio.Queue[_Instance] = asyncio.Queue()
        self._waiting = 0
        # Rendering the chat template costs ~0.5 ms: the router counts prompt tokens when it
        # places a request, and the worker reuses them.
        self._caches = _Caches()
        self._executor = ThreadPoolExecutor(config.replicas, thread_name_prefix=f"llamacpp-{name}")

    async def start(self) -> None:
        path = str(resolve_gguf(self.config.gguf))
        loop = asyncio.get_running_loop()
        for _ in range(self.config.replicas):
            instance = await loop.run_in_executor(
                self._executor, _Instance, self.config, path, self._caches
            )
            await loop.run_in_executor(self._executor, instance.warm_up)
            self._instances.append(instance)
            self._free.put_nowait(instance)

    async def aclose(self) -> None:
        await asyncio.to_thread(self._executor.shutdown, wait=True)
        for instance in self._instances:
            instance.llm.close()
        self._instances.clear()

    def count_prompt_tokens(self, request: Request) -> int | None:
        if not self._instances:
            return None
        return len(self._instances[0].prompt_tokens(request))

    def load(self) -> Load:
        busy = len(self._instances) - self._free.qsize()
        return Load(
            in_flight=busy,
            queued=self._waiting,
            capacity=len(self._instances),
            limit=self.config.replicas + self.config.max_queue,
        )

    async def generate(self, request: Request) -> AsyncIterator[StreamEvent]:
        instance = await self._acquire()
        loop = asyncio.get_running_loop()
        relay = ThreadRelay(loop)
        cancel = threading.Event()
        future = loop.run_in_executor(self._executor, instance.run, request, cancel, relay.put)
        # The slot frees when the thread lets go of the instance, however the stream ends.
        future.add_done_callback(lambda _: self._free.put_nowait(instance))
        try:
            while True:
                for event in _coalesced(await relay.take()):
                    if event is _END:
                        return
                    if isinstance(event, BaseException):
                        raise event
                    yield event
        finally:
            cancel.set()

    async def _acquire(self) -> _Instance:
        if self._free.empty() and self._waiting >= self.config.max_queue:
            raise ResourceExhausted(
                f"backend {self.name}: all {len(self._instances)} instances busy and "
                f"{self._waiting} requests queued (max_queue {self.config.max_queue})"
            )
        self._waiting += 1
        try:
            return await self._free.get()
        finally:
            self._waiting -= 1
