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


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: str
    content: str


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
