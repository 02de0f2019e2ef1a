"""The edge backend's prompt: a whole agent conversation through the GGUF's chat template.

The template receives plain `{role, content}` messages (the form every chat template takes):

- tools in play (backends/llamacpp_grammar.tools_in_play) and a JSON response format become a
  system section, appended to a leading system message or put before the conversation: each
  tool's name, description and parameters schema, and the exact call format the grammar
  enforces; the response schema as it is to be followed;
- an assistant message's tool calls become blocks of that same call format after its text, so
  the model sees its earlier calls as it would have written them;
- a `tool` message stays a `tool` turn when the template knows that role (it compares a role
  with 'tool'); otherwise consecutive results become one user turn of lines "The tool NAME
  (call ID) returned: RESULT" (roles keep alternating for strict templates; SmolLM2 answers
  from such a line, where it echoes a `<tool_response>` block back);
- text parts are joined to the content (ChatMessage.text); images are not sent (the edge
  backend has no "vision" feature, so placement never gives it one).

A request without tools, tool calls or a response format renders exactly as its messages did
before tools existed.
"""

from __future__ import annotations

import json
from typing import Any

from backends.llamacpp_grammar import CALL_ARGUMENTS, CALL_CLOSE, CALL_OPEN, tools_in_play
from router.core.types import ChatMessage, Request, ToolCall

_CALL_FORMAT = (
    f"{CALL_OPEN}<tool name as a JSON string>{CALL_ARGUMENTS}<arguments object>{CALL_CLOSE}"
)


def template_knows_tool_role(template: str) -> bool:
    """True if the chat template handles `tool` messages itself."""
    return "'tool'" in template or '"tool"' in template


def call_block(call: ToolCall) -> str:
    """A call in the format the tool grammar enforces."""
    arguments = call.arguments.strip() or "{}"
    return f"{CALL_OPEN}{json.dumps(call.name)}{CALL_ARGUMENTS}{arguments}{CALL_CLOSE}"


def _tools_section(request: Request) -> str:
    tools = tools_in_play(request.tools, request.tool_choice)
    if not tools:
        return ""
    lines = [
        "# Tools",
        "You can call these tools. Each line gives a tool's name, what it does, and the JSON "
        "Schema of its arguments:",
        "<tools>",
    ]
    for tool in tools:
        lines.append(
            f'{{"name": {json.dumps(tool.name)}, "description": {json.dumps(tool.description)}, '
            f'"parameters": {tool.parameters}}}'
        )
    lines.append("</tools>")
    lines.append("To call a tool, write exactly this, with nothing before it:")
    lines.append(_CALL_FORMAT)
    choice = request.tool_choice
    if choice.mode == "tool":
        lines.append(f"Call the tool {choice.name} now.")
    elif choice.mode == "required":
        lines.append("Call one of the tools now.")
    else:
        lines.append("Call a tool if you need one; otherwise answer in plain text.")
    if request.parallel_tool_calls:
        lines.append("For several calls, write one block per call, each on its own lines.")
    else:
        lines.append("Make one call at most.")
    lines.append("A tool's result comes back as a message saying what it returned.")
    return "\n".join(lines)


def _format_section(request: Request) -> str:
    fmt = request.response_format
    if fmt.type == "json_schema" and fmt.schema:
        return (
            "# Response format\nAnswer with only a JSON object that follows this JSON Schema:\n"
            + fmt.schema
        )
    if fmt.type == "json_object":
        return "# Response format\nAnswer with only a JSON object."
    return ""


def system_section(request: Request) -> str:
    """The instructions the request's tools and response format add to the prompt."""
    return "\n\n".join(s for s in (_tools_section(request), _format_section(request)) if s)


def template_messages(request: Request, tool_role: bool) -> list[dict[str, Any]]:
    """The conversation as `{role, content}` dicts for the chat template."""
    messages = request.messages
    if not (request.tools or request.response_format.type != "text") and not any(
        m.parts or m.tool_calls or m.role == "tool" for m in messages
    ):
        return [{"role": m.role, "content": m.content} for m in messages]
    names = {c.id: c.name for m in messages for c in m.tool_calls}
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "assistant" and m.tool_calls:
            blocks = [call_block(c) for c in m.tool_calls]
            out.append({"role": "assistant", "content": "\n".join([m.text, *blocks]).lstrip("\n")})
        elif m.role == "tool" and not tool_role:
            block = _tool_response(m, names.get(m.tool_call_id, ""))
            if out and out[-1].get("tool_results"):
                out[-1]["content"] += "\n" + block
            else:
                out.append({"role": "user", "content": block, "tool_results": True})
        else:
            out.append({"role": m.role, "content": m.text})
    for entry in out:
        entry.pop("tool_results", None)
    section = system_section(request)
    if section:
        if out and out[0]["role"] == "system":
            out[0]["content"] = f"{out[0]['content']}\n\n{section}".lstrip("\n")
        else:
            out.insert(0, {"role": "system", "content": section})
    return out


def _tool_response(message: ChatMessage, name: str) -> str:
    return f"The tool {name} (call {message.tool_call_id}) returned: {message.text}"


def plain_prompt(messages: list[dict[str, Any]]) -> str:
    """The prompt for a GGUF without a chat template."""
    return "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant:"
