"""Domain types shared by the router, the backends and the policies (no gRPC here)."""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field


class Privacy(enum.IntEnum):
    """Data-sensitivity class; the values match the proto enum."""

    UNSPECIFIED = 0
    PUBLIC = 1
    INTERNAL = 2
    CONFIDENTIAL = 3
    RESTRICTED = 4


class Tier(enum.StrEnum):
    """Where a backend produces tokens."""

    EDGE = "edge"
    CLOUD_GPU = "cloud_gpu"
    REMOTE_API = "remote_api"


ROLES = frozenset({"system", "user", "assistant", "tool"})


IMAGE_TOKENS = 1600  # prompt tokens counted for one image (Anthropic's ~1.15 megapixel bound)


@dataclass(frozen=True, slots=True)
class ContentPart:
    """A part of a message beside its plain `content`: text, or an image by URL (http(s) or a
    data: URL) or by its bytes (`data`, with its `media_type`)."""

    type: str  # "text" or "image"
    text: str = ""
    url: str = ""
    data: bytes = b""
    media_type: str = ""


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call an assistant message made: `arguments` is a JSON object's text."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One turn. An assistant turn may carry `tool_calls`; a `tool` turn answers the call whose
    id is `tool_call_id`, with its result in `content` (and `parts`)."""

    role: str
    content: str
    parts: tuple[ContentPart, ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str = ""

    @property
    def text(self) -> str:
        """`content` and the text parts, joined by blank lines (for text-only backends)."""
        if not self.parts:
            return self.content
        texts = [self.content] if self.content else []
        texts.extend(p.text for p in self.parts if p.type == "text")
        return "\n\n".join(texts)

    @property
    def images(self) -> int:
        return sum(1 for p in self.parts if p.type == "image")


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool offered to the model: `parameters` is a JSON Schema's text (an object schema)."""

    name: str
    description: str = ""
    parameters: str = '{"type": "object", "properties": {}}'


@dataclass(frozen=True, slots=True)
class ToolChoice:
    """auto (the model decides), none (no call), required (some call), or tool (`name`)."""

    mode: str = "auto"
    name: str = ""


@dataclass(frozen=True, slots=True)
class ResponseFormat:
    """text, json_object (any JSON object), or json_schema (`schema` is a JSON Schema's text;
    `strict` asks the backend to enforce it and the router to check it)."""

    type: str = "text"
    name: str = ""
    schema: str = ""
    strict: bool = False


AUTO = ToolChoice()
TEXT = ResponseFormat()


@dataclass(frozen=True, slots=True)
class Request:
    """A validated request, as the scheduler and the backends see it."""

    request_id: str
    tenant: str
    messages: tuple[ChatMessage, ...]
    max_tokens: int
    temperature: float
    model: str = ""
    privacy: Privacy = Privacy.UNSPECIFIED
    latency_slo_ms: int = 0
    max_cost_usd: float | None = None
    profile: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    features: tuple[str, ...] = ()
    deadline: float | None = None  # time.monotonic() by which the call must end (gRPC deadline)
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: ToolChoice = AUTO
    parallel_tool_calls: bool | None = None  # None: the backend's default
    response_format: ResponseFormat = TEXT
    stop: tuple[str, ...] = ()
    top_p: float | None = None
    seed: int | None = None
    api_key: str = ""  # public id of the API key the call came with ("" with tenant keys off)

    def __post_init__(self) -> None:
        # `features` always holds what the request uses, listed by the client or not, so the
        # capability policy (and everything else reading it) sees tools, schemas and images.
        needed = self.required_features()
        if needed != self.features:
            object.__setattr__(self, "features", needed)

    def texts(self) -> list[str]:
        """Every text a backend receives for this request: contents, text parts, image URLs
        (not image bytes), tool calls' names and arguments, tool definitions and the response
        schema. Privacy scans it; token estimates count it."""
        if not (self.tools or self.response_format.schema) and not any(
            m.parts or m.tool_calls for m in self.messages
        ):
            return [m.content for m in self.messages]
        out: list[str] = []
        add = out.append
        for m in self.messages:
            add(m.content)
            for p in m.parts:
                add(p.text or p.url)
            for c in m.tool_calls:
                add(c.name)
                add(c.arguments)
        for t in self.tools:
            add(t.name)
            add(t.description)
            add(t.parameters)
        if self.response_format.schema:
            add(self.response_format.schema)
        return out

    def chars(self) -> int:
        """Characters of texts()."""
        return sum(map(len, self.texts()))

    @property
    def images(self) -> int:
        """Images in the conversation (each counts IMAGE_TOKENS prompt tokens)."""
        return sum(m.images for m in self.messages if m.parts)

    def required_features(self) -> tuple[str, ...]:
        """The features the client listed plus those the request uses: tools (offered, or
        calls in its history), json_mode, json_schema, vision (an image)."""
        implied = list(self.features)
        if self.tools or any(m.tool_calls or m.role == "tool" for m in self.messages):
            implied.append("tools")
        kind = self.response_format.type
        if kind != "text":
            implied.append("json_schema" if kind == "json_schema" else "json_mode")
        if self.images:
            implied.append("vision")
        return tuple(dict.fromkeys(implied))

    def time_left(self) -> float | None:
        """Seconds until the deadline, or None without one."""
        return None if self.deadline is None else self.deadline - time.monotonic()


@dataclass(frozen=True, slots=True)
class Candidate:
    """One backend as the scheduler saw it for one request."""

    backend: str
    feasible: bool
    scores: dict[str, float] = field(default_factory=dict)
    total: float = 0.0
    rejected_by: str = ""
    reason: str = ""
    estimated_cost_usd: float = 0.0
    estimated_ttft_ms: float = 0.0
    estimated_total_ms: float = 0.0
    estimator: str = "analytic"  # "model" when the learned predictors decided the estimates


@dataclass(frozen=True, slots=True)
class Decision:
    """Where a request runs, and why."""

    request_id: str
    backend: str
    model: str
    tier: Tier
    profile: str
    privacy: Privacy
    prompt_tokens: int
    estimated_cost_usd: float
    estimated_ttft_ms: float
    solver: str
    decision_us: int
    candidates: tuple[Candidate, ...]
    batch_size: int = 1
    batch_id: int = 0
    detected: tuple[str, ...] = ()
    config_version: str = ""


@dataclass(slots=True)
class Usage:
    """What a finished generation cost and how long it took."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    backend: str = ""
    finish_reason: str = ""
    ttft_ms: float = 0.0
    total_ms: float = 0.0
    backends_tried: list[str] = field(default_factory=list)
    schema_valid: bool | None = None  # strict json_schema output: did it validate? else None
