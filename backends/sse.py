"""Server-sent events as the spec parses them: lines (CRLF, CR or LF; a leading BOM dropped), then
(event, data) pairs. Both run in linear time and bound what an upstream may send: a line, and the
data of one event, at most 1 MiB (`MAX_SSE_LINE_CHARS`, `MAX_SSE_EVENT_CHARS`); beyond, they raise
BackendUnavailable "malformed stream: ..." naming the backend.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import AsyncIterable, AsyncIterator

from router.core.errors import BackendUnavailable

_EOL = re.compile(r"\r\n|\r|\n")  # SSE line ends; not str.splitlines, which also splits on U+2028
MAX_SSE_LINE_CHARS = 1 << 20  # an SSE line from an upstream, at most (1 MiB of ASCII)
MAX_SSE_EVENT_CHARS = 1 << 20  # the data of one SSE event, at most


async def sse_lines(
    chunks: AsyncIterable[bytes], backend: str, max_chars: int = MAX_SSE_LINE_CHARS
) -> AsyncIterator[str]:
    """Lines of a UTF-8 byte stream split on CRLF, CR or LF only, as the SSE format requires.

    A leading byte-order mark is dropped. Linear time: only the new text of each chunk is split;
    an unterminated line is kept as its parts and joined once it ends. A line longer than
    `max_chars` characters raises BackendUnavailable naming `backend` (memory stays bounded).
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    parts: list[str] = []  # the unterminated line so far
    size = 0
    start, after_cr = True, False
    async for chunk in chunks:
        text = decoder.decode(chunk)
        if not text:
            continue  # e.g. the first bytes of a multi-byte character
        if start:
            text, start = text.removeprefix("\ufeff"), False
        if after_cr and text.startswith("\n"):
            text = text[1:]  # the LF of a CRLF whose CR ended the previous chunk
        after_cr = text.endswith("\r")
        *ended, rest = _EOL.split(text)
        if ended:
            ended[0] = "".join((*parts, ended[0]))
            parts, size = [], 0
            for line in ended:
                if len(line) > max_chars:
                    raise _line_too_long(backend, max_chars)
                yield line
        if rest:
            parts.append(rest)
            size += len(rest)
            if size > max_chars:
                raise _line_too_long(backend, max_chars)
    if start:  # nothing decoded yet: the stream is at most an incomplete character
        parts = [decoder.decode(b"", final=True).removeprefix("\ufeff")]
    else:
        parts.append(decoder.decode(b"", final=True))
    if line := "".join(parts):
        yield line


def _line_too_long(backend: str, max_chars: int) -> BackendUnavailable:
    return BackendUnavailable(
        backend, f"malformed stream: an SSE line is longer than {max_chars} characters"
    )


async def sse_events(
    lines: AsyncIterable[str], backend: str, max_chars: int = MAX_SSE_EVENT_CHARS
) -> AsyncIterator[tuple[str, str]]:
    """(event, data) pairs from SSE lines; comments and unknown fields are skipped.

    The event name defaults to "message". Iteration ends after a `data: [DONE]` event (yielded as
    ("message", "[DONE]")); an event cut off by the end of the stream is dropped, per the spec.
    An event whose data lines add up to more than `max_chars` characters raises
    BackendUnavailable naming `backend`.
    """
    event, data, size = "", [], 0
    async for line in lines:
        if not line:
            if data:
                payload = "\n".join(data)
                yield event or "message", payload
                if payload == "[DONE]":
                    return
            event, data, size = "", [], 0
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
                size += len(value) + 1
                if size > max_chars:
                    reason = f"malformed stream: an SSE event is longer than {max_chars} characters"
                    raise BackendUnavailable(backend, reason)
