"""Translation between the proto messages and the domain types, with request validation.

Every rejected field raises InvalidArgument naming the field, e.g. `messages[2].role`. Every
field is bounded (`limits` in the config; features at most MAX_FEATURES entries) and checked in
time linear in its size; identifiers (tenant, request_id, model, profile, metadata keys) must be
printable: no control, format or separator characters. Errors quote client text only up to
SHOWN_CHARS characters, so a status message stays small whatever the client sent.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import get_args

from router.api import agent_fields
from router.api import router_pb2 as pb
from router.config import Config, Feature, LimitsConfig
from router.core.backend import TextDelta
from router.core.errors import InvalidArgument, RouterError
from router.core.framework import BackendView
from router.core.types import ROLES, ChatMessage, Decision, Privacy, Request, Tier, Usage

FEATURES = get_args(Feature)
MAX_FEATURES = 16  # entries in `features` (duplicates are merged; only FEATURES are known)
SHOWN_CHARS = 40  # client text quoted in an error message, at most
TIER_TO_PB = {Tier.EDGE: pb.EDGE, Tier.CLOUD_GPU: pb.CLOUD_GPU, Tier.REMOTE_API: pb.REMOTE_API}


def request_from_pb(
    msg: pb.GenerateRequest,
    config: Config,
    prefix: str = "",
    deadline: float | None = None,
    api_key: str = "",
) -> Request:
    """Validates a GenerateRequest and fills in the configured defaults.

    `prefix` is put before the field names in errors (e.g. "requests[2]." in RouteBatch);
    `deadline` (time.monotonic()) is the call's, if it has one; `api_key` is the public id of
    the key the call authenticated with (never taken from the message).
    """
    try:
        return _request(msg, config, deadline, api_key)
    except InvalidArgument as exc:
        raise exc.within(prefix) from None


def new_request_id() -> str:
    """A random id in the format of uuid.uuid4().hex (version and variant bits set), at a
    third of its cost."""
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    return b.hex()


_PRIVACY = {int(p): p for p in Privacy}


def _request(
    msg: pb.GenerateRequest, config: Config, deadline: float | None, api_key: str
) -> Request:
    limits, defaults = config.limits, config.defaults
    request_id, tenant, model, profile = msg.request_id, msg.tenant, msg.model, msg.profile
    max_id = limits.max_id_chars
    _identifier("request_id", request_id, max_id)
    _identifier("tenant", tenant, max_id)
    _identifier("model", model, max_id)
    _identifier("profile", profile, max_id)
    metadata = _metadata(msg.metadata, limits) if msg.metadata else {}
    pb_messages = msg.messages
    if not pb_messages:
        raise InvalidArgument("messages", "at least one message is required")
    if len(pb_messages) > limits.max_messages:
        raise InvalidArgument("messages", f"at most {limits.max_messages} messages are allowed")
    messages = []
    chars = 0
    blank = True
    call_ids: set[str] = set()  # ids of the tool calls so far, which tool messages answer
    for i, m in enumerate(pb_messages):
        role, content = m.role, m.content
        if role not in ROLES:
            raise InvalidArgument(
                f"messages[{i}].role",
                f"unknown role {shown(role)} (one of {', '.join(sorted(ROLES))})",
            )
        if agent_fields.is_agent_message(m):
            message, size = agent_fields.message(i, m, call_ids, limits.max_id_chars)
            chars += size
            blank = blank and not (content.strip() or message.parts or message.tool_calls)
            messages.append(message)
            continue
        chars += len(content)
        blank = blank and not content.strip()
        messages.append(ChatMessage(role, content))
    if blank:
        raise InvalidArgument("messages", "every message is empty")
    agent: dict = {}
    message_chars = chars
    if msg.tools or msg.HasField("tool_choice") or msg.HasField("response_format"):
        agent["tools"], size = agent_fields.tools(msg.tools)
        chars += size
        agent["tool_choice"] = agent_fields.tool_choice(msg, agent["tools"])
        agent["response_format"], size = agent_fields.response_format(msg)
        chars += size
    if msg.HasField("parallel_tool_calls"):
        agent["parallel_tool_calls"] = msg.parallel_tool_calls
    if msg.stop:
        agent["stop"] = agent_fields.stop(msg.stop)
    if msg.HasField("top_p"):
        agent["top_p"] = agent_fields.top_p(msg)
    if msg.HasField("seed"):
        agent["seed"] = msg.seed
    if chars > limits.max_prompt_chars:
        field = "messages" if message_chars > limits.max_prompt_chars else "tools"
        raise InvalidArgument(
            field,
            f"{chars} characters of messages, tools and schemas exceed the limit of "
            f"{limits.max_prompt_chars} (limits.max_prompt_chars)",
        )
    max_tokens = msg.max_tokens
    if max_tokens < 0:
        raise InvalidArgument("max_tokens", f"must not be negative, got {max_tokens}")
    if max_tokens > limits.max_tokens:
        raise InvalidArgument(
            "max_tokens", f"{max_tokens} exceeds the limit of {limits.max_tokens}"
        )
    temperature = msg.temperature if msg.HasField("temperature") else defaults.temperature
    if not (0.0 <= temperature <= 2.0) or math.isnan(temperature):
        raise InvalidArgument("temperature", f"must be within [0, 2], got {temperature}")
    privacy = _PRIVACY.get(msg.privacy)
    if privacy is None:
        raise InvalidArgument("privacy", f"unknown privacy class {msg.privacy}")
    latency_slo_ms = msg.latency_slo_ms
    if latency_slo_ms < 0:
        raise InvalidArgument("latency_slo_ms", f"must not be negative, got {latency_slo_ms}")
    max_cost = msg.max_cost_usd if msg.HasField("max_cost_usd") else None
    if max_cost is not None and not (max_cost >= 0 and math.isfinite(max_cost)):
        raise InvalidArgument("max_cost_usd", f"must be a non-negative number, got {max_cost}")
    features = msg.features
    return Request(
        request_id=request_id or new_request_id(),
        tenant=tenant or "default",
        messages=tuple(messages),
        max_tokens=max_tokens or defaults.max_tokens,
        temperature=temperature,
        model=model,
        privacy=privacy,
        latency_slo_ms=latency_slo_ms,
        max_cost_usd=max_cost,
        profile=profile,
        metadata=metadata,
        features=_features(features) if features else (),
        deadline=deadline,
        api_key=api_key,
        **agent,
    )


def shown(text: str) -> str:
    """`text` quoted for an error message, cut to SHOWN_CHARS characters."""
    if len(text) <= SHOWN_CHARS:
        return repr(text)
    return f"{text[:SHOWN_CHARS]!r}... ({len(text)} characters)"


def _identifier(field: str, value: str, limit: int) -> None:
    """A name or id: at most `limit` characters, all printable (a plain space is allowed)."""
    if len(value) > limit:
        raise InvalidArgument(field, f"{len(value)} characters exceed the limit of {limit}")
    if not value.isprintable():
        i = next(i for i, c in enumerate(value) if not c.isprintable())
        raise InvalidArgument(
            field,
            f"character U+{ord(value[i]):04X} at index {i} is not allowed "
            "(no control, format or separator characters)",
        )


def _metadata(entries: Mapping[str, str], limits: LimitsConfig) -> dict[str, str]:
    if len(entries) > limits.max_metadata_entries:
        raise InvalidArgument(
            "metadata",
            f"{len(entries)} entries exceed the limit of {limits.max_metadata_entries}",
        )
    for key, value in entries.items():
        try:
            _identifier("metadata", key, limits.max_metadata_key_chars)
        except InvalidArgument as exc:
            raise InvalidArgument(f"metadata[{shown(key)}]", f"key: {exc.reason}") from None
        if len(value) > limits.max_metadata_value_chars:
            raise InvalidArgument(
                f"metadata[{shown(key)}]",
                f"value of {len(value)} characters exceeds the limit of "
                f"{limits.max_metadata_value_chars}",
            )
    return dict(entries)


def _features(names: Sequence[str]) -> tuple[str, ...]:
    if len(names) > MAX_FEATURES:
        raise InvalidArgument(
            "features", f"{len(names)} entries exceed the limit of {MAX_FEATURES}"
        )
    for i, name in enumerate(names):
        if name not in FEATURES:
            raise InvalidArgument(
                f"features[{i}]", f"unknown feature {shown(name)} (one of {', '.join(FEATURES)})"
            )
    return tuple(dict.fromkeys(names))


def decision_to_pb(d: Decision) -> pb.RouteDecision:
    """The decision with its whole candidate table. Candidates are added in place, and the
    fields that are mostly empty (who rejected it and why, its scores, the detectors) are set
    only when they are not: a map given to a constructor, or a field set to its default, costs
    as much again. Either way every field of the Decision reaches the message."""
    msg = pb.RouteDecision(
        backend=d.backend,
        model=d.model,
        tier=TIER_TO_PB[d.tier],
        estimated_cost_usd=d.estimated_cost_usd,
        estimated_ttft_ms=d.estimated_ttft_ms,
        solver=d.solver,
        decision_us=d.decision_us,
        request_id=d.request_id,
        profile=d.profile,
        privacy=int(d.privacy),
        batch_size=d.batch_size,
        batch_id=d.batch_id,
        config_version=d.config_version,
    )
    if d.detected:
        msg.detected.extend(d.detected)
    add = msg.candidates.add
    for c in d.candidates:
        out = add(
            backend=c.backend,
            feasible=c.feasible,
            total=c.total,
            estimated_cost_usd=c.estimated_cost_usd,
            estimated_ttft_ms=c.estimated_ttft_ms,
            estimated_total_ms=c.estimated_total_ms,
            estimator=c.estimator,
        )
        if c.rejected_by:
            out.rejected_by = c.rejected_by
        if c.reason:
            out.reason = c.reason
        if c.scores:
            scores = out.scores
            for policy, score in c.scores.items():
                scores[policy] = score
    return msg


def result_to_pb(result: Decision | RouterError) -> pb.RouteDecision:
    """A RouteBatch entry: the decision, or the error that kept the request from being placed."""
    if isinstance(result, Decision):
        return decision_to_pb(result)
    return pb.RouteDecision(error_code=result.code, error=str(result))


def usage_to_pb(u: Usage) -> pb.Usage:
    msg = pb.Usage(
        prompt_tokens=u.prompt_tokens,
        completion_tokens=u.completion_tokens,
        cost_usd=u.cost_usd,
        backend=u.backend,
        finish_reason=u.finish_reason,
        ttft_ms=u.ttft_ms,
        total_ms=u.total_ms,
        backends_tried=u.backends_tried,
    )
    if u.schema_valid is not None:
        msg.schema_valid = u.schema_valid
    return msg


def delta_to_pb(d: TextDelta) -> pb.Delta:
    """A delta with tool-call fragments (plain text deltas are built inline, on the hot path)."""
    msg = pb.Delta(text=d.text)
    add = msg.tool_calls.add
    for c in d.tool_calls:
        add(index=c.index, id=c.id, name=c.name, arguments=c.arguments)
    return msg


def backend_to_pb(view: BackendView, health: int) -> pb.BackendInfo:
    cfg = view.config
    return pb.BackendInfo(
        name=view.name,
        tier=TIER_TO_PB[view.tier],
        models=list(view.models),
        health=health,
        price=pb.Price(
            input_per_mtok_usd=cfg.price.input_per_mtok,
            output_per_mtok_usd=cfg.price.output_per_mtok,
            per_request_usd=cfg.price.per_request,
        ),
        observed_ttft_ms=view.observed_ttft_ms,
        observed_tokens_per_s=view.observed_tokens_per_s,
        context_window=cfg.context_window,
        in_flight=view.in_flight,
        queued=view.queued,
        trust=cfg.effective_trust,
        region=cfg.region,
    )
