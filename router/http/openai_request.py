"""An OpenAI Chat Completions request body as a `pb.GenerateRequest`: JSON types and shapes.

What is read (every other top-level field is ignored, as SDKs send new ones; the driver bounds
the body's size and takes the routing fields off first):

- `model` -> pb `model`; `auto` and "" mean "the router decides" (pb "").
- `messages`: system, developer (-> system), user (a string, or text / image_url parts),
  assistant (content or text / refusal parts, `tool_calls`), tool (`tool_call_id`); `name` and
  other message fields are ignored.
- `tools` (type function), `tool_choice` (auto, none, required or `{type: function, function:
  {name}}`), `parallel_tool_calls`.
- `response_format`: text, json_object, json_schema `{name, schema, strict}`.
- `stop` (a string is a list of one), `seed`, `top_p`, `temperature`.
- `max_completion_tokens` and `max_tokens` -> pb `max_tokens`; when both are set
  `max_completion_tokens` wins (OpenAI deprecated `max_tokens` for it; a client sending both
  means the newer one).
- `stream`, `stream_options.include_usage`: how to answer (`Parsed.stream`, `OpenAIOptions`).
- `metadata` (string values) -> pb `metadata`; `user` becomes its entry `user` unless metadata
  has one.
- `n`, `logprobs`, `top_logprobs`: only 1, false and unset; anything else is a 400 naming it,
  as are the deprecated `functions` and `function_call`, `audio` and `prediction`.
- Ignored: store, service_tier, the penalties, logit_bias, and fields SDKs add later.

Errors name the field as OpenAI does (`messages[1].content[0].type`, `tools[0].function.name`)
and say what was expected; lengths, counts and names are checked afterwards by
router/api/convert.py with the configured limits. Every loop here runs over a list of the
(size-bounded) body once, so parsing is linear in the body.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from router.api import router_pb2 as pb
from router.core.errors import InvalidArgument
from router.http import fields
from router.http.fields import array

AUTO_MODELS = ("auto", "")  # the model names that let the router decide
ROLES = {"system": "system", "developer": "system", "user": "user"}
ROLES |= {"assistant": "assistant", "tool": "tool"}
TOOL_CHOICES = ("auto", "none", "required")
FORMATS = ("text", "json_object", "json_schema")
UNSUPPORTED_PARTS = ("input_audio", "file")
INT32_MAX = 2**31 - 1
REFUSED = {  # fields whose meaning this face cannot honour: a 400 rather than silence
    "functions": "deprecated: use tools",
    "function_call": "deprecated: use tool_choice",
    "audio": "audio output is not supported",
    "prediction": "predicted outputs are not supported",
}


@dataclass(frozen=True)
class OpenAIOptions:
    """How to answer: `include_usage` is `stream_options.include_usage`."""

    include_usage: bool = False


def parse_request(body: dict[str, Any]) -> tuple[pb.GenerateRequest, bool, str, OpenAIOptions]:
    """(the request, stream, the model as sent, the answer options) of a decoded body."""
    model = _optional(body, "model", fields.text) or ""
    msg = pb.GenerateRequest(model="" if model in AUTO_MODELS else model)
    messages = array("messages", body.get("messages"))
    msg.messages.extend(_message(i, m) for i, m in enumerate(messages))
    _sampling(body, msg)
    _agent(body, msg)
    _metadata(body, msg)
    _unsupported(body)
    stream = bool(_optional(body, "stream", fields.boolean))
    options = OpenAIOptions()
    stream_options = _optional(body, "stream_options", fields.obj)
    if stream_options:
        usage = _optional(stream_options, "include_usage", fields.boolean, "stream_options.")
        options = OpenAIOptions(include_usage=bool(usage))
    return msg, stream, model, options


def _message(i: int, m: Any) -> pb.Message:
    field = f"messages[{i}]"
    if not isinstance(m, dict):
        raise InvalidArgument(field, "must be an object with a role")
    role = m.get("role")
    if not isinstance(role, str) or role not in ROLES:
        raise InvalidArgument(
            f"{field}.role", f"must be one of {', '.join(ROLES)}, got {_shown(role)}"
        )
    content = m.get("content")
    if content is None and role != "assistant":
        raise InvalidArgument(f"{field}.content", f"a {role} message needs content")
    text, parts = _content(f"{field}.content", content, role)
    out = pb.Message(role=ROLES[role], content=text, parts=parts)
    calls = m.get("tool_calls")
    if calls is not None:
        out.tool_calls.extend(
            _tool_call(f"{field}.tool_calls[{j}]", c)
            for j, c in enumerate(array(f"{field}.tool_calls", calls))
        )
    call_id = m.get("tool_call_id")
    if call_id is not None:
        if not isinstance(call_id, str):
            raise InvalidArgument(f"{field}.tool_call_id", "must be a string")
        out.tool_call_id = call_id
    return out


def _content(field: str, content: Any, role: str) -> tuple[str, list[pb.ContentPart]]:
    if content is None:
        return "", []
    if isinstance(content, str):
        return content, []
    if not isinstance(content, list):
        raise InvalidArgument(field, "must be a string or a list of content parts")
    return "", [_part(f"{field}[{j}]", p, role) for j, p in enumerate(content)]


def _part(field: str, p: Any, role: str) -> pb.ContentPart:
    if not isinstance(p, dict):
        raise InvalidArgument(field, "must be a content part object with a type")
    kind = p.get("type")
    if kind == "text" or (kind == "refusal" and role == "assistant"):
        text = p.get(kind)
        if not isinstance(text, str):
            raise InvalidArgument(f"{field}.{kind}", "must be a string")
        return pb.ContentPart(type="text", text=text)
    if kind == "image_url" and role == "user":
        image = p.get("image_url")
        url = image.get("url") if isinstance(image, dict) else None
        if not isinstance(url, str):
            raise InvalidArgument(
                f"{field}.image_url.url", "must be a string (an http(s) or data: URL)"
            )
        return pb.ContentPart(type="image", image_url=url)
    if kind in UNSUPPORTED_PARTS:
        raise InvalidArgument(f"{field}.type", f"{kind} parts are not supported")
    allowed = {"user": "text or image_url", "assistant": "text or refusal"}.get(role, "text")
    raise InvalidArgument(
        f"{field}.type", f"a {role} message's parts are {allowed}, got {_shown(kind)}"
    )


def _tool_call(field: str, c: Any) -> pb.ToolCall:
    if not isinstance(c, dict):
        raise InvalidArgument(field, "must be a tool call object")
    kind = c.get("type", "function")
    if kind != "function":
        raise InvalidArgument(f"{field}.type", f"must be function, got {_shown(kind)}")
    call_id = c.get("id")
    if not isinstance(call_id, str):
        raise InvalidArgument(f"{field}.id", "must be a string")
    function = c.get("function")
    if not isinstance(function, dict):
        raise InvalidArgument(f"{field}.function", "must be an object with name and arguments")
    name = function.get("name")
    if not isinstance(name, str):
        raise InvalidArgument(f"{field}.function.name", "must be a string")
    # JSON text per the spec; an object is taken too
    arguments = fields.json_text(f"{field}.function.arguments", function.get("arguments", ""))
    return pb.ToolCall(id=call_id, name=name, arguments=arguments)


def _sampling(body: dict[str, Any], msg: pb.GenerateRequest) -> None:
    for name in ("max_tokens", "max_completion_tokens"):  # the latter wins when both are set
        value = _optional(body, name, _token_limit)
        if value is not None:
            msg.max_tokens = value
    for name in ("temperature", "top_p"):  # ranges are checked by router/api/convert.py
        value = _optional(body, name, fields.number)
        if value is not None:
            setattr(msg, name, value)
    seed = _optional(body, "seed", fields.integer)  # within 64 bits
    if seed is not None:
        msg.seed = seed
    stop = body.get("stop")
    if isinstance(stop, str):
        msg.stop.append(stop)
    elif stop is not None:
        for i, s in enumerate(array("stop", stop)):
            if not isinstance(s, str):
                raise InvalidArgument(f"stop[{i}]", "must be a string")
            msg.stop.append(s)


def _agent(body: dict[str, Any], msg: pb.GenerateRequest) -> None:
    tools = body.get("tools")
    if tools is not None:
        msg.tools.extend(_tool(f"tools[{i}]", t) for i, t in enumerate(array("tools", tools)))
    choice = body.get("tool_choice")
    if choice is not None:
        msg.tool_choice.CopyFrom(_tool_choice(choice))
        _choice_offered(msg)
    parallel = _optional(body, "parallel_tool_calls", fields.boolean)
    if parallel is not None:
        msg.parallel_tool_calls = parallel
    fmt = _optional(body, "response_format", fields.obj)
    if fmt is not None:
        msg.response_format.CopyFrom(_response_format(fmt))


def _tool(field: str, t: Any) -> pb.Tool:
    if not isinstance(t, dict):
        raise InvalidArgument(field, "must be a tool object")
    if t.get("type") != "function":
        raise InvalidArgument(f"{field}.type", f"must be function, got {_shown(t.get('type'))}")
    spec = t.get("function")
    if not isinstance(spec, dict):
        raise InvalidArgument(f"{field}.function", "must be an object with a name")
    name = spec.get("name")
    if not isinstance(name, str):
        raise InvalidArgument(f"{field}.function.name", "must be a string")
    description = spec.get("description") or ""
    if not isinstance(description, str):
        raise InvalidArgument(f"{field}.function.description", "must be a string")
    params = spec.get("parameters")
    if params is not None and not isinstance(params, dict):
        raise InvalidArgument(f"{field}.function.parameters", "must be a JSON Schema object")
    text = "" if params is None else fields.json_text(f"{field}.function.parameters", params)
    return pb.Tool(name=name, description=description, parameters=text)


def _tool_choice(choice: Any) -> pb.ToolChoice:
    if isinstance(choice, str):
        if choice not in TOOL_CHOICES:
            raise InvalidArgument(
                "tool_choice", f"must be auto, none, required or a function, got {_shown(choice)}"
            )
        return pb.ToolChoice(mode=choice)
    if not isinstance(choice, dict):
        raise InvalidArgument("tool_choice", "must be a string or an object")
    if choice.get("type") != "function":
        raise InvalidArgument(
            "tool_choice.type", f"must be function, got {_shown(choice.get('type'))}"
        )
    function = choice.get("function")
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(name, str):
        raise InvalidArgument("tool_choice.function.name", "must be a string")
    return pb.ToolChoice(mode="tool", name=name)


def _choice_offered(msg: pb.GenerateRequest) -> None:
    """A required or named tool choice needs the tool in `tools` (checked here too, so the error
    names the field as OpenAI does; the set of names is built once)."""
    mode = msg.tool_choice.mode
    if mode in ("required", "tool") and not msg.tools:
        raise InvalidArgument("tool_choice", f"{mode!r} needs at least one tool in `tools`")
    if mode == "tool" and msg.tool_choice.name not in {t.name for t in msg.tools}:
        name = _shown(msg.tool_choice.name)
        raise InvalidArgument("tool_choice.function.name", f"{name} is not one of `tools`")


def _response_format(fmt: dict[str, Any]) -> pb.ResponseFormat:
    kind = fmt.get("type")
    if kind not in FORMATS:
        raise InvalidArgument(
            "response_format.type", f"must be one of {', '.join(FORMATS)}, got {_shown(kind)}"
        )
    if kind != "json_schema":
        return pb.ResponseFormat(type=kind)
    spec = fmt.get("json_schema")
    if not isinstance(spec, dict):
        raise InvalidArgument("response_format.json_schema", "must be an object with a schema")
    name = spec.get("name") or ""
    if not isinstance(name, str):
        raise InvalidArgument("response_format.json_schema.name", "must be a string")
    schema = spec.get("schema")
    if not isinstance(schema, dict):
        raise InvalidArgument("response_format.json_schema.schema", "must be a JSON Schema object")
    strict = spec.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise InvalidArgument("response_format.json_schema.strict", "must be a boolean")
    return pb.ResponseFormat(
        type="json_schema",
        name=name,
        schema=fields.json_text("response_format.json_schema.schema", schema),
        strict=bool(strict),
    )


def _metadata(body: dict[str, Any], msg: pb.GenerateRequest) -> None:
    metadata = _optional(body, "metadata", fields.obj)
    for key, value in (metadata or {}).items():
        if not isinstance(value, str):
            raise InvalidArgument(f"metadata.{_shown(key)}", "must be a string")
        msg.metadata[key] = value
    user = _optional(body, "user", fields.text)
    if user and "user" not in msg.metadata:
        msg.metadata["user"] = user


def _unsupported(body: dict[str, Any]) -> None:
    for name, why in REFUSED.items():
        if body.get(name) is not None:
            raise InvalidArgument(name, f"not supported ({why})")
    n = _optional(body, "n", fields.integer)
    if n is not None and n != 1:
        raise InvalidArgument("n", f"only 1 choice is supported, got {n}")
    if _optional(body, "logprobs", fields.boolean):
        raise InvalidArgument("logprobs", "log probabilities are not supported")
    if _optional(body, "top_logprobs", fields.integer):
        raise InvalidArgument("top_logprobs", "log probabilities are not supported")


def _token_limit(name: str, value: Any) -> int:
    return fields.integer(name, value, 1, INT32_MAX)


def _optional(
    body: dict[str, Any], name: str, read: Callable[[str, Any], Any], prefix: str = ""
) -> Any:
    """body[name] read by `read` (router/http/fields.py: it names the field, `prefix` + name,
    when the JSON type is wrong), or None when it is null or absent."""
    value = body.get(name)
    return None if value is None else read(prefix + name, value)


_JSON_TYPES = {type(None): "null", bool: "a boolean", int: "an integer", float: "a number"}
_JSON_TYPES[list] = "an array"


def _shown(value: Any) -> str:
    """A client value for an error message: a string quoted (cut to 40 characters), else its
    JSON type."""
    if not isinstance(value, str):
        return _JSON_TYPES.get(type(value), "an object")
    return repr(value) if len(value) <= 40 else f"{value[:40]!r}... ({len(value)} characters)"


_PB_FIELDS = (  # router/api/convert.py's field names (the gRPC message's) in OpenAI's terms
    (re.compile(r"^(messages\[\d+\])\.parts(\[\d+\])\.image_url$"), r"\1.content\2.image_url.url"),
    (re.compile(r"^(messages\[\d+\])\.parts"), r"\1.content"),
    (re.compile(r"^(messages\[\d+\]\.tool_calls\[\d+\])\.(name|arguments)$"), r"\1.function.\2"),
    (re.compile(r"^(tools\[\d+\])\.(name|description|parameters)$"), r"\1.function.\2"),
    (re.compile(r"^tool_choice\.mode$"), "tool_choice"),
    (re.compile(r"^tool_choice\.name$"), "tool_choice.function.name"),
    (re.compile(r"^response_format\.(name|schema|strict)$"), r"response_format.json_schema.\1"),
)


def openai_field(name: str) -> str:
    """A field as router/api/convert.py names it (`tools[0].name`, `messages[1].parts[0]`) in
    the terms of the Chat Completions body (`tools[0].function.name`, `messages[1].content[0]`);
    names that are the same in both come back unchanged."""
    for pattern, replacement in _PB_FIELDS:
        renamed, count = pattern.subn(replacement, name, count=1)
        if count:
            return renamed
    return name
