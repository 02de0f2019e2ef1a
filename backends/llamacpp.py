"""Edge backend: GGUF models in-process through llama-cpp-python.

A bounded pool of model instances (`replicas`) serves one generation each; requests beyond the
pool wait in a queue of at most `max_queue`, and beyond that are refused at once. Generation runs
in worker threads, never on the event loop; closing the stream stops generation at the next token,
and the instance returns to the pool only when its thread has let go of it.
"""

from __future__ import annotations

import asyncio
import codecs
import os
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

from pydantic import Field

from backends.gguf import resolve_gguf
from backends.thread_relay import ThreadRelay
from router.core.backend import Backend, Finish, Load, StreamEvent, TextDelta
from router.core.backend_config import BackendCommon, Feature
from router.core.errors import InvalidArgument, ResourceExhausted
from router.core.types import ChatMessage, Request, Tier

_END = object()
_PROMPT_CACHE_SIZE = 64  # prompts; enough for every request in flight or queued
_PROMPT_CACHE_MAX_TOKENS = 16384  # longer prompts are not kept


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
    threads: int | None = Field(None, ge=1, description="CPU threads per instance; default: all")
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


class _Instance:
    """One llama.cpp model context and its chat formatter; used by one thread at a time."""

    def __init__(
        self, config: LlamaCppConfig, path: str, cache: OrderedDict[Any, list[int]]
    ) -> None:
        self.cache = cache  # shared by the backend's instances (same model, same tokens)
        import llama_cpp  # heavy import, done off the event loop
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.llm = llama_cpp.Llama(
            model_path=path,
            n_ctx=config.context_window,
            n_threads=config.threads or os.cpu_count() or 1,
            n_batch=min(config.batch_size, config.context_window),
            seed=config.seed if config.seed >= 0 else llama_cpp.LLAMA_DEFAULT_SEED,
            verbose=False,
        )
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

    def prompt_tokens(self, messages: Sequence[ChatMessage]) -> list[int]:
        """The prompt's tokens, from the cache when the router already counted them."""
        key = tuple(messages)
        tokens = self.cache.get(key)
        if tokens is None:
            tokens = self._tokenize(messages)
            if len(tokens) <= _PROMPT_CACHE_MAX_TOKENS:
                self.cache[key] = tokens
            while len(self.cache) > _PROMPT_CACHE_SIZE:
                self.cache.popitem(last=False)
        return tokens

    def _tokenize(self, messages: Sequence[ChatMessage]) -> list[int]:
        """Applies the GGUF's chat template (or a plain fallback) and tokenizes the prompt."""
        if self.formatter is not None:
            result = self.formatter(
                messages=[{"role": m.role, "content": m.content} for m in messages]
            )
            return self.llm.tokenize(
                result.prompt.encode(), add_bos=not result.added_special, special=True
            )
        text = "".join(f"{m.role}: {m.content}\n" for m in messages) + "assistant:"
        return self.llm.tokenize(text.encode(), add_bos=True, special=False)

    def warm_up(self) -> None:
        """Evaluates a tiny prompt once, so the first real request does not pay for the set-up."""
        tokens = self.prompt_tokens([ChatMessage("user", "Hi")])
        for _ in self.llm.generate(tokens, temp=0.0, reset=True):
            break

    def run(
        self,
        request: Request,
        cancel: threading.Event,
        emit: Callable[[Any], None],
    ) -> None:
        """Generates in the calling (worker) thread, emitting events until done or cancelled."""
        try:
            begun, prefill_ms = time.perf_counter(), 0.0
            tokens = self.prompt_tokens(request.messages)
            if len(tokens) + request.max_tokens > self.n_ctx:
                raise InvalidArgument(
                    "messages",
                    f"prompt of {len(tokens)} tokens + max_tokens {request.max_tokens} exceeds the "
                    f"context window of {self.n_ctx}",
                )
            decode = codecs.getincrementaldecoder("utf-8")(errors="replace").decode
            pieces, limit = self.pieces, request.max_tokens
            completion, finish, unsent = 0, "length", 0
            for token in self.llm.generate(
                tokens, temp=request.temperature, top_k=40, top_p=0.95, min_p=0.05, reset=True
            ):
                if cancel.is_set():
                    finish = "cancelled"
                    break
                piece = pieces[token] if token in pieces else self.piece(token)
                if piece is None:
                    finish = "stop"
                    break
                completion += 1
                unsent += 1
                if completion == 1:
                    prefill_ms = (time.perf_counter() - begun) * 1e3
                text = decode(piece)
                if text:
                    emit(TextDelta(text, unsent))
                    unsent = 0
                if completion >= limit:
                    break
            tail = decode(b"", final=True)
            if tail:
                emit(TextDelta(tail, unsent))
            emit(Finish(len(tokens), completion, finish, prefill_ms))
        except BaseException as exc:  # handed to the event loop, raised there
            emit(exc)
        finally:
            emit(_END)


def _coalesced(items: list[Any]) -> list[Any]:
    """The items the worker emitted since the loop last looked, consecutive deltas merged into one
    (their texts joined, their token counts summed), so a loop turn yields each kind once."""
    if len(items) == 1:
        return items
    out: list[Any] = []
    texts: list[str] = []
    tokens = 0
    for item in items:
        if type(item) is TextDelta:
            texts.append(item.text)
            tokens += item.tokens
            continue
        if texts:
            out.append(TextDelta("".join(texts), tokens))
            texts, tokens = [], 0
        out.append(item)
    if texts:
        out.append(TextDelta("".join(texts), tokens))
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
        # places a request, and the worker reuses them. Plain dict operations, safe under the GIL.
        self._prompt_cache: OrderedDict[Any, list[int]] = OrderedDict()
        self._executor = ThreadPoolExecutor(config.replicas, thread_name_prefix=f"llamacpp-{name}")

    async def start(self) -> None:
        path = str(resolve_gguf(self.config.gguf))
        loop = asyncio.get_running_loop()
        for _ in range(self.config.replicas):
            instance = await loop.run_in_executor(
                self._executor, _Instance, self.config, path, self._prompt_cache
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
        return len(self._instances[0].prompt_tokens(request.messages))

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
