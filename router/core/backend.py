"""The backend contract: one async streaming method, a prompt-token counter, start and close."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import ClassVar

from router.core.backend_config import BackendCommon
from router.core.types import Request, Tier


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A fragment of a tool call: the first fragment of a call (by `index`) carries its id and
    name, later ones pieces of its JSON arguments; joined they give the whole call."""

    index: int
    id: str = ""
    name: str = ""
    arguments: str = ""


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of generated text and the completion tokens it carries.

    `tokens` lets the router charge a stream that ends early for what it produced: llama.cpp
    counts exactly (tokens that decoded to no text yet ride on the next delta); an
    OpenAI-compatible server sends one token per content chunk (vLLM, llama.cpp's server), so
    each chunk is one; Anthropic's deltas carry several tokens and its exact count comes only at
    the end, so each delta is estimated
    (router.core.estimates.completion_tokens_estimate). The final Finish's counts replace these
    sums.

    `tool_calls` carries tool-call fragments (with `text` empty, or text that came with them).
    """

    text: str
    tokens: int = 1
    tool_calls: tuple[ToolCallDelta, ...] = ()


@dataclass(frozen=True, slots=True)
class Finish:
    """The end of a generation, with exact token counts from the backend."""

    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # stop, length, tool_calls or cancelled
    prefill_ms: float = 0.0  # from starting work on the request to its first token; 0: unknown


StreamEvent = TextDelta | Finish


@dataclass(frozen=True, slots=True)
class Load:
    """A backend's current load, read by the scheduler without I/O."""

    in_flight: int = 0
    queued: int = 0
    capacity: int = 0  # concurrent generations it can run; 0 when unknown
    limit: int = 0  # requests it accepts at once (running + queued) before refusing; 0: no limit


class Backend(abc.ABC):
    """A place where tokens are produced; subclasses implement `generate`, the rest is optional.

    `config_model` is the backend type's config model: a BackendCommon subclass with the type's
    own fields and its `tier`, which validates the type's entries under `backends:`.
    """

    config_model: ClassVar[type[BackendCommon]] = BackendCommon

    def __init__(self, name: str, config: BackendCommon) -> None:
        self.name = name
        self.config = config
        self.admitted = 0  # requests the router admitted here and that have not finished

    @property
    def tier(self) -> Tier:
        return self.config.tier

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Loads models or opens connections; called once before the first request."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Releases everything `start` acquired."""

    def count_prompt_tokens(self, request: Request) -> int | None:
        """Exact prompt tokens of `request` (messages, and tools and schemas as this backend
        puts them in the prompt) with its tokenizer and template, or None if unknown."""
        return None

    def load(self) -> Load:
        return Load()

    async def probe(self) -> Load:
        """Checks the backend's health and reads its load (called by a background collector).

        Raises an exception when the backend is unreachable or unhealthy. The default: healthy.
        """
        return self.load()

    @abc.abstractmethod
    def generate(self, request: Request) -> AsyncIterator[StreamEvent]:
        """Streams TextDelta events and ends with exactly one Finish.

        Raises router.core.errors.RouterError subclasses; closing the iterator stops generation.
        """
