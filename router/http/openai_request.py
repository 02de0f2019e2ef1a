"""OpenAI Chat Completions request bodies -> the gRPC request (its checks follow in convert.py).

Taken: model (`auto` or empty: the router decides), messages (system, developer as system, user,
assistant with tool_calls, tool with tool_call_id; content as text or parts: text, image_url),
tools (function), tool_choice, parallel_tool_calls, response_format (text, json_object,
json_schema), stop, seed, top_p, temperature, max_completion_tokens or max_tokens, metadata,
stream and stream_options.include_usage. Refused with 400 naming the field: n other than 1,
logprobs, audio or file parts, non-function tools, and the deprecated `functions`. Ignored:
user, store, service_tier, penalties, logit_bias and other fields the SDKs may add.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from router.api import router_pb2 as pb
from router.core.errors import InvalidArgument
from router.http.face import Parsed
from router.http.fields import array, boolean, integer, json_text, number, obj, text

ROLES = {"system": "system", "developer": "system", "user": "user"}
ROLES |= {"assistant": "assistant", "tool": "tool"}
AUTO = ("", "auto")
REFUSED = {
    "functions": "use tools",
    "function_call": "use tool_choice",
    "audio": "audio output is not supported",
    "prediction": "predicted outputs are not supported",
}


@dataclass(frozen=True)
class Options:
    """How to answer: with the usage chunk at the end of a stream?"""

    include_usage: bool = False


def parse(body: dict[str, Any]) -> Parsed:
    """The Parsed request of a Chat Completions body (see the module docstring)."""
    for key, why in REFUSED.items():
        if body.get(key) is not None:
            raise InvalidArgument(key, f"not supported: {why}")
    model = text("model", body.get("model", ""))
    msg = pb.GenerateRequest(model="" if model in AUTO else model)
    messages = array("messages", body.get("messages"))
    msg.messages.extend(_message(f"messages[{i}]", m) for i, m in enumerate(messages))
    _sampling(msg, body)
    _agent(msg, body)
    if (metadata := body.get("metadata")) is not None:
        for key, value in obj("metadata", metadata).items():
            msg.metadata[key] = text(f"metadata.{key}"[:80], value)
    stream = body.get("stream")
    stream = False if stream is None else boolean("stream", stream)
    include = False
    if (options := body.get("stream_options")) is not None:
        usage = obj("stream_options", options).get("include_usage")
        include = usage is not None and boolean("stream_options.include_usage", usage)
    return Parsed(msg, stream, model, Options(include))


def _sampling(msg: pb.GenerateRequest, body: dict[str, Any]) -> None:
    n = body.get("n")
    if n is not None and integer("n", n) != 1:
        raise InvalidArgument("n", "only n=1 is supported")
    if body.get("logprobs") or body.get("top_logprobs"):
        raise InvalidArgument("logprobs", "log probabilities are not supported")
    limit = None
    for key in ("max_tokens", "max_completion_tokens"):  # the newer name wins
        if (value := body.get(key)) is not None:
            limit = integer(key, value, 0, 2**31 - 1)
    if limit is not None:
        msg.max_tokens = limit
    if (value := body.get("temperature")) is not None:
        msg.temperature = number("temperature", value)
    if (value := body.get("top_p")) is not None:
        msg.top_p = number("top_p", value)
    if (value := body.get("seed")) is not None:
        msg.seed = integer("seed", value)
    stop = body.get("stop")
    if isinstance(stop, str):
        msg.stop.append(stop)
    elif stop is not None:
        msg.stop.extend(text(f"stop[{i}]", s) for i, s in enumerate(array("stop", stop)))


def _agent(msg: pb.GenerateRequest, body: dict[str, Any]) -> None:
    if (tools := body.get("tools")) is not None:
        msg.tools.extend(_tool(f"tools[{i}]", t) for i, t in enumerate(array("tools", tools)))
    if (choice := body.get("tool_choice")) is not None:
        msg.tool_choice.CopyFrom(_tool_choice(choice))
    if (parallel := body.get("parallel_tool_calls")) is not None:
        msg.parallel_tool_calls = boolean("parallel_tool_calls", parallel)
    if (fmt := body.get("response_format")) is not None:
        msg.response_format.CopyFrom(_format(obj("response_format", fmt)))


def _message(field: str, value: Any) -> pb.Message:
    m = obj(field, value)
    role = text(f"{field}.role", m.get("role"))
    if role not in ROLES:
        raise InvalidArgument(f"{field}.role", f"unknown role (one of {', '.join(ROLES)})"[:120])
    out = pb.Message(role=ROLES[role])
    content = m.get("content")
    if isinstance(content, str):
        out.content = content
    elif content is not None:
        parts = array(f"{field}.content", content)
        out.parts.extend(_part(f"{field}.content[{j}]", p) for j, p in enumerate(parts))
    if (calls := m.get("tool_calls")) is not None and role == "assistant":
        for j, c in enumerate(array(f"{field}.tool_calls", calls)):
            out.tool_calls.append(_call(f"{field}.tool_calls[{j}]", c))
    if role == "tool":
        out.tool_call_id = text(f"{field}.tool_call_id", m.get("tool_call_id"))
    return out


def _part(field: str, value: Any) -> pb.ContentPart:
    p = obj(field, value)
    kind = p.get("type")
    if kind == "text":
        return pb.ContentPart(type="text", text=text(f"{field}.text", p.get("text")))
    if kind == "image_url":
        image = p.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        return pb.ContentPart(type="image", image_url=text(f"{field}.image_url.url", url))
    raise InvalidArgument(f"{field}.type", "unsupported part type (text or image_url)")


def _call(field: str, value: Any) -> pb.ToolCall:
    c = obj(field, value)
    kind = c.get("type", "function")
    if kind != "function":
        raise InvalidArgument(f"{field}.type", "must be function")
    function = obj(f"{field}.function", c.get("function"))
    return pb.ToolCall(
        id=text(f"{field}.id", c.get("id")),
        name=text(f"{field}.function.name", function.get("name")),
        arguments=json_text(f"{field}.function.arguments", function.get("arguments", "{}")),
    )


def _tool(field: str, value: Any) -> pb.Tool:
    t = obj(field, value)
    if t.get("type", "function") != "function":
        raise InvalidArgument(f"{field}.type", "only function tools are supported")
    spec = obj(f"{field}.function", t.get("function"))
    params = spec.get("parameters")
    return pb.Tool(
        name=text(f"{field}.function.name", spec.get("name")),
        description=text(f"{field}.function.description", spec.get("description", "")),
        parameters="" if params is None else json_text(f"{field}.function.parameters", params),
    )


def _tool_choice(value: Any) -> pb.ToolChoice:
    if isinstance(value, str):
        if value not in ("auto", "none", "required"):
            raise InvalidArgument("tool_choice", "must be auto, none, required or a function")
        return pb.ToolChoice(mode=value)
    choice = obj("tool_choice", value)
    if choice.get("type") != "function":
        raise InvalidArgument("tool_choice.type", "must be function")
    function = obj("tool_choice.function", choice.get("function"))
    return pb.ToolChoice(mode="tool", name=text("tool_choice.function.name", function.get("name")))


def _format(fmt: dict[str, Any]) -> pb.ResponseFormat:
    kind = fmt.get("type")
    if kind in ("text", "json_object"):
        return pb.ResponseFormat(type=kind)
    if kind != "json_schema":
        raise InvalidArgument("response_format.type", "must be text, json_object or json_schema")
    spec = obj("response_format.json_schema", fmt.get("json_schema"))
    strict = spec.get("strict")
    return pb.ResponseFormat(
        type="json_schema",
        name=text("response_format.json_schema.name", spec.get("name", "output")),
        schema=json_text("response_format.json_schema.schema", spec.get("schema", {})),
        strict=strict is not None and boolean("response_format.json_schema.strict", strict),
    )
