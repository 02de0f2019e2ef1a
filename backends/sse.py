"""Server-sent events as the spec parses them, over bytes as they arrive: `SseParser`.

`parser.feed(data)` takes whatever bytes the connection delivered and returns every event they
complete, as (event, data) pairs, so a read that brought several events costs one call. Lines end
at CRLF, CR or LF (never at U+2028 and friends, unlike str.splitlines); a leading byte-order mark
is dropped; comments and unknown fields are skipped; the event name defaults to "message". After
a `data: [DONE]` event (returned as ("message", "[DONE]")) `done` is set and the rest is ignored.
An event cut off by the end of the stream is dropped, per the spec.

Linear time in what the upstream sends, and bounded: the bytes of an unterminated event are kept
as a list of parts and joined once it ends; a line longer than `MAX_SSE_LINE_CHARS` or an event
longer than `MAX_SSE_EVENT_CHARS` (both 1 MiB, counted in bytes) raises BackendUnavailable
"malformed stream: ..." naming the backend.
"""

from __future__ import annotations

from router.core.errors import BackendUnavailable

MAX_SSE_LINE_CHARS = 1 << 20  # an SSE line from an upstream, at most (bytes)
MAX_SSE_EVENT_CHARS = 1 << 20  # one SSE event (its lines together), at most (bytes)
_BOM = b"\xef\xbb\xbf"


class SseParser:
    """Incremental SSE parser for one stream; see the module docstring."""

    def __init__(
        self,
        backend: str,
        max_line: int = MAX_SSE_LINE_CHARS,
        max_event: int = MAX_SSE_EVENT_CHARS,
    ) -> None:
        self.backend = backend
        self.max_line = max_line
        self.max_event = max_event
        self.done = False  # `data: [DONE]` was seen
        self._parts: list[bytes] = []  # the unterminated event so far (LF line ends)
        self._size = 0
        self._line = 0  # bytes since the last line end
        self._head: bytes | None = b""  # the first bytes, until it is clear if they are a BOM
        self._cr = False  # the previous bytes ended with CR (its LF may come next)
        self._lf = False  # the event so far ends with a line end

    def feed(self, data: bytes) -> list[tuple[str, str]]:
        """The events that `data` completes, in order."""
        if self.done:
            return []
        if self._head is not None:
            data = self._head + data
            if len(data) < 3 and _BOM.startswith(data):
                self._head = data
                return []
            self._head = None
            data = data.removeprefix(_BOM)
        if self._cr and data:
            self._cr = False
            if data.startswith(b"\n"):
                data = data[1:]  # the LF of a CRLF whose CR ended the previous bytes
        if b"\r" in data:
            self._cr = data.endswith(b"\r")
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if not data:
            return []
        events: list[tuple[str, str]] = []
        start = 0
        if self._lf and data.startswith(b"\n"):  # a blank line right after the kept part
            self._emit(b"".join(self._parts), events)
            self._parts, self._size, start = [], 0, 1
        while not self.done:
            end = data.find(b"\n\n", start)
            if end < 0:
                break
            block = data[start:end]
            if self._parts:
                block = b"".join((*self._parts, block))
                self._parts, self._size = [], 0
            self._emit(block, events)
            start = end + 2
        if self.done:
            return events
        rest = data[start:] if start else data
        if rest:
            self._keep(rest)
        return events

    def _keep(self, rest: bytes) -> None:
        """Keeps the start of an unterminated event, within the limits."""
        last = rest.rfind(b"\n")
        self._line = self._line + len(rest) if last < 0 else len(rest) - last - 1
        if self._line > self.max_line:
            raise self._malformed(f"an SSE line is longer than {self.max_line} characters")
        self._size += len(rest)
        if self._size > self.max_event:
            raise self._malformed(f"an SSE event is longer than {self.max_event} characters")
        self._parts.append(rest)
        self._lf = rest.endswith(b"\n")

    def _emit(self, block: bytes, events: list[tuple[str, str]]) -> None:
        """Parses one event's lines (without its blank line) and appends it if it has data."""
        self._line, self._lf = 0, False
        if len(block) > self.max_event:
            raise self._malformed(f"an SSE event is longer than {self.max_event} characters")
        text = block.decode("utf-8", errors="replace")
        if text.startswith("data: ") and "\n" not in text:  # the common case: one data line
            data, event = text[6:], ""
        else:
            event, lines = "", []
            for line in text.split("\n"):
                if not line or line.startswith(":"):
                    continue
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "event":
                    event = value
                elif name == "data":
                    lines.append(value)
            if not lines:
                return
            data = "\n".join(lines)
        events.append((event or "message", data))
        if data == "[DONE]":
            self.done = True

    def _malformed(self, what: str) -> BackendUnavailable:
        return BackendUnavailable(self.backend, f"malformed stream: {what}")
