"""What the HTTP backends relay of one read of an upstream stream: text and tool-call fragments.

The events one read brought are relayed as few TextDeltas as their order allows: text pieces
are joined, consecutive argument fragments of one call are joined, and a new TextDelta starts
only where text follows tool-call fragments (a TextDelta's text comes before its calls). So
what an upstream sends faster than the router relays it costs one trip, and order is kept.
"""

from __future__ import annotations

from router.core.backend import TextDelta, ToolCallDelta


class DeltaBatch:
    """Collects text and tool-call fragments, then `take()`s them as TextDeltas."""

    __slots__ = ("_calls", "_out", "_texts", "_tokens", "pieces")

    def __init__(self) -> None:
        self._texts: list[str] = []
        self._calls: list[ToolCallDelta] = []
        self._tokens = 0
        self._out: list[TextDelta] = []
        self.pieces = 0  # text pieces and fragments added since the last take()

    def text(self, text: str, tokens: int = 1) -> None:
        """Adds generated text carrying `tokens` completion tokens."""
        if self._calls:
            self._flush()
        self._texts.append(text)
        self._tokens += tokens
        self.pieces += 1

    def call(self, delta: ToolCallDelta, tokens: int = 1) -> None:
        """Adds a tool-call fragment; an arguments piece of the call just before is joined."""
        calls = self._calls
        last = calls[-1] if calls else None
        if last is not None and last.index == delta.index and not (delta.id or delta.name):
            calls[-1] = ToolCallDelta(
                last.index, last.id, last.name, last.arguments + delta.arguments
            )
        else:
            calls.append(delta)
        self._tokens += tokens
        self.pieces += 1

    def take(self) -> list[TextDelta]:
        """The TextDeltas of what was added since the last call, in order."""
        self._flush()
        out, self._out, self.pieces = self._out, [], 0
        return out

    def _flush(self) -> None:
        if not (self._texts or self._calls):
            return
        texts = self._texts
        text = texts[0] if len(texts) == 1 else "".join(texts)
        self._out.append(TextDelta(text, self._tokens, tuple(self._calls)))
        self._texts, self._calls, self._tokens = [], [], 0
