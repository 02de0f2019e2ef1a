"""Conversions between LangChain's message types and the router client's, for ChatTokenRouter.

LangChain messages go out in the OpenAI Chat Completions shape the client takes (LangChain's own
`convert_to_openai_messages` does the heavy lifting: tool calls, tool results, Anthropic-style
`tool_use` blocks, standard image blocks); what comes back (text, `pb.ToolCallDelta` fragments,
the final `GenerateResult`) becomes an `AIMessage` or a stream of `AIMessageChunk`s whose last
chunk carries the usage and the routing decision.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import grpc
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.messages.tool import invalid_tool_call, tool_call, tool_call_chunk
from langchain_core.messages.utils import convert_to_openai_messages
from langchain_core.outputs import ChatGenerationChunk

from router.api import router_pb2 as pb
from router.client import GenerateResult

PRIVACY = ("unspecified", "public", "internal", "confidential", "restricted")
# Content blocks not sent: a model's earlier reasoning (it needs not see it again), and the v1
# blocks of tool calls, which the message's tool_calls carry.
_DROPPED_BLOCKS = frozenset(
    {
        "thinking",
        "redacted_thinking",
        "reasoning",
        "tool_call",
        "tool_call_chunk",
        "invalid_tool_call",
    }
)
_SENT_BLOCKS = frozenset({"text", "image_url"})


class TokenRouterError(RuntimeError):
    """A call the router refused or failed: `code` is the gRPC status name (INVALID_ARGUMENT,
    FAILED_PRECONDITION, UNAVAILABLE ...), `details` the router's message, which names the field
    or the backends and policies that stood in the way."""

    def __init__(self, code: str, details: str) -> None:
        super().__init__(f"tokenrouter {code}: {details}")
        self.code = code
        self.details = details


class TokenRouterInvalidRequest(TokenRouterError, ValueError):
    """INVALID_ARGUMENT: a request field is wrong (the message names it)."""


def router_error(exc: grpc.RpcError) -> TokenRouterError:
    """The exception a gRPC error surfaces as, keeping the router's message."""
    code = exc.code() if callable(getattr(exc, "code", None)) else None
    name = code.name if code is not None else "UNKNOWN"
    details = (exc.details() if callable(getattr(exc, "details", None)) else None) or str(exc)
    cls = TokenRouterInvalidRequest if name == "INVALID_ARGUMENT" else TokenRouterError
    return cls(name, details)


def privacy_name(value: Any) -> str:
    """A privacy class as its lower-case name; `value` is a name (any case) or 0-4."""
    if isinstance(value, bool):
        raise ValueError(f"privacy: {value!r} is not a privacy class ({', '.join(PRIVACY)})")
    if isinstance(value, int) and 0 <= value < len(PRIVACY):
        return PRIVACY[value]
    if isinstance(value, str) and value.lower() in PRIVACY:
        return value.lower()
    raise ValueError(f"privacy: {value!r} is not a privacy class ({', '.join(PRIVACY)})")


def _content(index: int, role: str, content: Any) -> Any:
    """Keeps text and image parts; drops earlier reasoning; refuses what the API cannot carry."""
    if isinstance(content, str) or content is None:
        return content or ""
    parts = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, Mapping) else "text"
        if kind in _DROPPED_BLOCKS:
            continue
        if kind not in _SENT_BLOCKS:
            raise ValueError(
                f"messages[{index}].content[{j}]: a {kind!r} block ({role}) cannot be sent to"
                " tokenrouter: it carries text and images (image_url, or image with url or"
                " base64)"
            )
        parts.append(part)
    if all(isinstance(p, str) or p.get("type") == "text" for p in parts):
        return "\n".join(p if isinstance(p, str) else p.get("text", "") for p in parts)
    return parts


def client_messages(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """LangChain messages as the client's Chat Completions dicts (roles system, user,
    assistant with tool_calls, tool with tool_call_id; content text or text and image parts)."""
    converted = convert_to_openai_messages(list(messages), text_format="string")
    out = []
    for i, m in enumerate(converted):
        role = m.get("role", "")
        msg: dict[str, Any] = {"role": role, "content": _content(i, role, m.get("content"))}
        if m.get("tool_calls"):
            msg["tool_calls"] = m["tool_calls"]
        if m.get("tool_call_id"):
            msg["tool_call_id"] = m["tool_call_id"]
        out.append(msg)
    return out


def tool_choice(choice: Any, names: Sequence[str]) -> str | dict[str, Any] | None:
    """LangChain's tool_choice as the client's: "any"/True mean "required"; a name must be one
    of the bound tools'."""
    if choice is None or choice is False:
        return None
    if choice is True or choice == "any":
        return "required"
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, str):
        if choice not in names:
            raise ValueError(
                f"tool_choice: {choice!r} is not a bound tool ({', '.join(names) or 'none bound'})"
            )
        return choice
    if isinstance(choice, Mapping):
        name = choice.get("function", choice).get("name")
        if name not in names:
            raise ValueError(
                f"tool_choice: {name!r} is not a bound tool ({', '.join(names) or 'none bound'})"
            )
        return {"type": "function", "function": {"name": name}}
    raise ValueError(
        f"tool_choice: {choice!r} is not auto, none, any, required, a tool's name or"
        " {'type': 'function', 'function': {'name': ...}}"
    )


def usage_metadata(usage: pb.Usage) -> UsageMetadata:
    return UsageMetadata(
        input_tokens=usage.prompt_tokens,
        output_tokens=usage.completion_tokens,
        total_tokens=usage.prompt_tokens + usage.completion_tokens,
    )


def _candidate(c: pb.Candidate) -> dict[str, Any]:
    return {
        "backend": c.backend,
        "feasible": c.feasible,
        "scores": dict(c.scores),
        "total": c.total,
        "rejected_by": c.rejected_by,
        "reason": c.reason,
        "estimated_cost_usd": c.estimated_cost_usd,
        "estimated_ttft_ms": c.estimated_ttft_ms,
        "estimated_total_ms": c.estimated_total_ms,
        "estimator": c.estimator,
    }


def decision_dict(d: pb.RouteDecision) -> dict[str, Any]:
    """Everything the routing decision carries, as plain Python values."""
    return {
        "request_id": d.request_id,
        "backend": d.backend,
        "model": d.model,
        "tier": pb.Tier.Name(d.tier),
        "profile": d.profile,
        "privacy": pb.Privacy.Name(d.privacy),
        "detected": list(d.detected),
        "solver": d.solver,
        "config_version": d.config_version,
        "decision_us": d.decision_us,
        "batch_size": d.batch_size,
        "batch_id": d.batch_id,
        "estimated_cost_usd": d.estimated_cost_usd,
        "estimated_ttft_ms": d.estimated_ttft_ms,
        "candidates": [_candidate(c) for c in d.candidates],
    }


def response_metadata(result: GenerateResult) -> dict[str, Any]:
    """model_name, finish_reason and what the router measured (backend, tier, cost, latency,
    backends tried, schema_valid) at the top level; the whole decision under "decision"."""
    d, u = result.decision, result.usage
    meta: dict[str, Any] = {
        "model_name": d.model,
        "model_provider": "tokenrouter",
        "finish_reason": u.finish_reason,
        "backend": u.backend or d.backend,
        "tier": pb.Tier.Name(d.tier),
        "cost_usd": u.cost_usd,
        "ttft_ms": u.ttft_ms,
        "total_ms": u.total_ms,
        "backends_tried": list(u.backends_tried),
        "request_id": d.request_id,
        "decision": decision_dict(d),
    }
    if u.HasField("schema_valid"):
        meta["schema_valid"] = u.schema_valid
    return meta


def ai_message(result: GenerateResult) -> AIMessage:
    """The complete answer: its text, parsed tool calls (invalid JSON arguments go to
    invalid_tool_calls), usage and routing metadata."""
    calls, invalid = [], []
    for c in result.tool_calls:
        try:
            args = json.loads(c.arguments or "{}")
        except json.JSONDecodeError as exc:
            invalid.append(
                invalid_tool_call(name=c.name, args=c.arguments, id=c.id, error=str(exc))
            )
            continue
        if isinstance(args, dict):
            calls.append(tool_call(name=c.name, args=args, id=c.id))
        else:
            error = "arguments are not a JSON object"
            invalid.append(invalid_tool_call(name=c.name, args=c.arguments, id=c.id, error=error))
    return AIMessage(
        content=result.text,
        tool_calls=calls,
        invalid_tool_calls=invalid,
        usage_metadata=usage_metadata(result.usage),
        response_metadata=response_metadata(result),
    )


def chunk(item: str | pb.ToolCallDelta | GenerateResult) -> ChatGenerationChunk:
    """One streamed item as a chunk: text, a tool-call fragment (index, id, name, arguments),
    or the last chunk with the usage and the decision."""
    if isinstance(item, str):
        return ChatGenerationChunk(message=AIMessageChunk(content=item))
    if isinstance(item, pb.ToolCallDelta):
        fragment = tool_call_chunk(
            name=item.name or None, args=item.arguments, id=item.id or None, index=item.index
        )
        return ChatGenerationChunk(message=AIMessageChunk(content="", tool_call_chunks=[fragment]))
    message = AIMessageChunk(
        content="",
        usage_metadata=usage_metadata(item.usage),
        response_metadata=response_metadata(item),
        chunk_position="last",
    )
    return ChatGenerationChunk(
        message=message, generation_info={"finish_reason": item.usage.finish_reason}
    )
