"""Field names of the shared request checks, in Anthropic Messages terms.

router/api/convert.py names the fields of the gRPC message (`messages[3].parts[0].media_type`);
a Messages body has other shapes: the system prompt is pb message 0, a user turn's tool_result
blocks become tool messages of their own, a turn's single text block is the message's content,
and image fields live under `source`. `Names` records, while the body is read, where each pb
message and each of its parts and tool calls came from, and maps a checked field back
(`messages[1].content[2].source.media_type`). Fields it does not know come back unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_MESSAGE = re.compile(r"messages\[(\d+)\](?:\.(parts|tool_calls)\[(\d+)\])?(.*)")
_PART_FIELDS = {
    ".image_url": ".source.url",
    ".image_data": ".source.data",
    ".media_type": ".source.media_type",
}
_CALL_FIELDS = {".arguments": ".input"}
_TOP = {"tool_choice.mode": "tool_choice.type", "metadata['user_id']": "metadata.user_id"}


@dataclass
class Origin:
    """Where one pb message came from: the body field behind it, its content text, its tool
    call id, the block list its parts were read from, and the block behind each part and each
    tool call."""

    origin: str
    content: str
    tool_call_id: str = ""
    blocks: str = ""
    parts: list[str] = field(default_factory=list)
    tool_calls: list[str] = field(default_factory=list)


class Names:
    """The origins of one request's pb messages, in order; calling it renames a field."""

    def __init__(self) -> None:
        self._messages: list[Origin] = []

    def add(self, origin: Origin) -> None:
        self._messages.append(origin)

    def __call__(self, name: str) -> str:
        if name in _TOP:
            return _TOP[name]
        if name == "stop" or name.startswith("stop["):
            return "stop_sequences" + name[4:]
        if name.startswith("tools[") and name.endswith(".parameters"):
            return name.removesuffix(".parameters") + ".input_schema"
        m = _MESSAGE.fullmatch(name)
        if m is None or int(m[1]) >= len(self._messages):
            return name
        entry, rest = self._messages[int(m[1])], m[4]
        if m[2] is None:
            if rest == ".content":
                return entry.content
            if rest == ".tool_call_id":
                return entry.tool_call_id or entry.origin
            if rest in (".parts", ".tool_calls"):  # the list as a whole: the blocks it came from
                return entry.blocks or entry.content
            return entry.origin + rest
        sources = entry.parts if m[2] == "parts" else entry.tool_calls
        k = int(m[3])
        if k >= len(sources):
            return entry.blocks or entry.content
        table = _PART_FIELDS if m[2] == "parts" else _CALL_FIELDS
        return sources[k] + table.get(rest, rest)
