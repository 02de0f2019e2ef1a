"""The edge backend's output as it is decoded: tool-call fragments and stop sequences.

`CallParser` reads the text a tool grammar (backends/llamacpp_grammar.py) lets the model
write and turns it into ToolCallDelta fragments as the characters arrive: a call's first
fragment (its index, id and name) once the name is complete, then pieces of its arguments'
JSON text as they are decoded. Under tool_choice `auto` an answer that does not start with the
call marker is text, passed through unchanged (held back only while it could still be the
marker's start).

`StopFilter` cuts text at the first stop sequence; the text never includes it, and a piece
that could be the start of one is held back until the next piece tells.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from backends.llamacpp_grammar import CALL_ARGUMENTS, CALL_CLOSE, CALL_OPEN, CALL_SEPARATOR
from router.core.backend import TextDelta, ToolCallDelta

_OPEN, _NAME, _AFTER_NAME, _ARGS, _CLOSE, _TEXT = range(6)


class CallParser:
    """Tool-call text in, (text, fragments) out; see the module docstring."""

    def __init__(self, request_id: str, text_allowed: bool) -> None:
        self._id_prefix = f"call_{request_id[:16]}_"
        self._text_allowed = text_allowed
        self._state = _OPEN
        self._buf = ""  # characters of the current state not consumed yet
        self._depth = 0  # nesting of the arguments' JSON
        self._in_string = False
        self._escaped = False
        self.calls = 0  # calls begun (their first fragment sent)

    def feed(self, text: str) -> tuple[str, list[ToolCallDelta]]:
        """The text to pass on and the call fragments that `text` completes."""
        if self._state == _TEXT:
            return text, []
        out: list[ToolCallDelta] = []
        self._buf += text
        passed = ""
        while self._buf:
            if self._state == _OPEN:
                if not self._opening():
                    break
            elif self._state == _NAME:
                if not self._name(out):
                    break
            elif self._state == _AFTER_NAME:
                if len(self._buf) < len(CALL_ARGUMENTS):
                    break
                self._buf = self._buf[len(CALL_ARGUMENTS) :]
                self._state = _ARGS
            elif self._state == _ARGS:
                self._arguments(out)
            elif self._state == _CLOSE:
                if not self._closing():
                    break
            else:  # _TEXT: the answer is text after all
                passed, self._buf = self._buf, ""
        return passed, out

    def flush(self) -> str:
        """Text held back at the end (a partial marker that turned out to be text)."""
        if self._state in (_OPEN, _TEXT) and self.calls == 0 and self._text_allowed:
            held, self._buf = self._buf, ""
            return held
        return ""

    def _opening(self) -> bool:
        buf = self._buf
        if self.calls and buf.startswith(CALL_SEPARATOR):
            buf = buf[len(CALL_SEPARATOR) :]
        if buf.startswith(CALL_OPEN):
            self._buf = buf[len(CALL_OPEN) :]
            self._state = _NAME
            return True
        if CALL_OPEN.startswith(buf) or (self.calls and buf == ""):
            return False  # could still be the marker: wait for more
        if self.calls or not self._text_allowed:
            raise ValueError(f"tool-call output off its grammar: {self._buf[:40]!r}")
        self._state = _TEXT
        return True

    def _name(self, out: list[ToolCallDelta]) -> bool:
        end = self._buf.find('"', 1)  # names hold no quote or backslash (^[A-Za-z0-9_-]+$)
        if end < 0:
            return False
        name = json.loads(self._buf[: end + 1])
        out.append(ToolCallDelta(self.calls, f"{self._id_prefix}{self.calls}", name, ""))
        self.calls += 1
        self._buf = self._buf[end + 1 :]
        self._state = _AFTER_NAME
        return True

    def _arguments(self, out: list[ToolCallDelta]) -> None:
        """Consumes argument characters up to the end of the JSON object (or of the buffer)."""
        buf, depth, in_string, escaped = self._buf, self._depth, self._in_string, self._escaped
        i, n = 0, len(buf)
        while i < n:
            ch = buf[i]
            i += 1
            if in_string:
                if escaped:
                    escaped = False
                elif ch == "\\":
                    escaped = True
                elif ch == '"':
                    in_string = False
            elif ch == '"':
                in_string = True
            elif ch in "{[":
                depth += 1
            elif ch in "}]":
                depth -= 1
                if depth == 0:
                    self._state = _CLOSE
                    break
        self._depth, self._in_string, self._escaped = depth, in_string, escaped
        out.append(ToolCallDelta(self.calls - 1, "", "", buf[:i]))
        self._buf = buf[i:]

    def _closing(self) -> bool:
        stripped = self._buf.lstrip(" ")
        if len(stripped) < len(CALL_CLOSE):
            return False
        self._buf = stripped[len(CALL_CLOSE) :]
        self._state = _OPEN
        return True


class StopFilter:
    """Cuts text at the first of `stops`; see the module docstring."""

    def __init__(self, stops: tuple[str, ...]) -> None:
        self._stops = tuple(s for s in stops if s)
        self._held = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        """The part of `text` (after what was held back) that is sure to be sent."""
        if not self._stops:
            return text
        if self.stopped:
            return ""
        text = self._held + text
        cut = min((i for i in (text.find(s) for s in self._stops) if i >= 0), default=-1)
        if cut >= 0:
            self._held, self.stopped = "", True
            return text[:cut]
        keep = 0  # the longest tail of `text` that starts some stop sequence
        for stop in self._stops:
            for k in range(min(len(stop) - 1, len(text)), keep, -1):
                if text.endswith(stop[:k]):
                    keep = k
                    break
        self._held = text[len(text) - keep :] if keep else ""
        return text[: len(text) - keep]

    def flush(self) -> str:
        """What was held back, at the end of the generation."""
        held, self._held = self._held, ""
        return held


class Output:
    """Decoded text in, TextDelta events out: through the call parser (when tools are in
    play) and the stop filter, each delta carrying the tokens generated since the last one."""

    def __init__(
        self, emit: Callable[[Any], None], parser: CallParser | None, stops: StopFilter
    ) -> None:
        self._emit = emit
        self.parser = parser
        self._stops = stops
        self.unsent = 0  # tokens generated since the last delta

    @property
    def stopped(self) -> bool:
        """A stop sequence ended the text."""
        return self._stops.stopped

    def add(self, text: str, tokens: int) -> None:
        """Takes `tokens` more tokens that decoded to `text` (possibly empty)."""
        self.unsent += tokens
        fragments: list[ToolCallDelta] = []
        if text and self.parser is not None:
            text, fragments = self.parser.feed(text)
        if text:
            text = self._stops.feed(text)
        if text or fragments:
            self._emit(TextDelta(text, self.unsent, tuple(fragments)))
            self.unsent = 0

    def close(self, tail: str) -> None:
        """The decoder's last characters, then whatever the parser and filter held back."""
        self.add(tail, 0)
        held = self.parser.flush() if self.parser is not None else ""
        if self.stopped:
            return
        text = self._stops.feed(held) + self._stops.flush() if held else self._stops.flush()
        if text:
            self._emit(TextDelta(text, self.unsent))
            self.unsent = 0
