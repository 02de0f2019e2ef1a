"""Regexes that match in time linear in the text: RE2 (google-re2), with errors that say why.

RE2 matches with automata, never backtracks, and releases the GIL while it scans. It refuses
what needs backtracking (look-arounds, back-references, atomic groups, possessive quantifiers);
`compile_linear` then raises ValueError naming the construct, so an operator's pattern is refused
with the reason instead of running in exponential time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import re2


class Match(Protocol):
    """A regex match, as RE2's Python binding returns it (the subset of re.Match used here)."""

    @property
    def string(self) -> str: ...
    def group(self, *groups: int | str) -> Any: ...
    def start(self, group: int = 0) -> int: ...  # RE2's take group numbers only
    def end(self, group: int = 0) -> int: ...


class Pattern(Protocol):
    """A compiled RE2 regex."""

    @property
    def pattern(self) -> str: ...
    def search(self, text: str) -> Match | None: ...
    def match(self, text: str) -> Match | None: ...
    def finditer(self, text: str) -> Iterator[Match]: ...


_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # errors are raised to the caller, not written to stderr

# What RE2 refuses that Python's re accepts: the start of its error message, and the construct.
_UNSUPPORTED = (
    ("invalid perl operator: (?=", "a look-ahead (?=...)"),
    ("invalid perl operator: (?!", "a look-ahead (?!...)"),
    ("invalid perl operator: (?<=", "a look-behind (?<=...)"),
    ("invalid perl operator: (?<!", "a look-behind (?<!...)"),
    ("invalid perl operator: (?>", "an atomic group (?>...)"),
)
_BACK_REFERENCE = "invalid escape sequence: \\"  # then a digit: \\1
_POSSESSIVE = "bad repetition operator: "  # then e.g. "++" or "*+"


def compile_linear(regex: str) -> Pattern:
    """Compiles `regex` with RE2 (linear-time matching); raises ValueError saying why it cannot."""
    try:
        return re2.compile(regex, _OPTIONS)
    except re2.error as exc:
        raise ValueError(_why(regex, exc.args[0] if exc.args else exc)) from None


def _why(regex: str, error: object) -> str:
    """RE2's error message, and for a construct Python has but RE2 lacks, that it lacks it."""
    reason = error.decode(errors="replace") if isinstance(error, bytes) else str(error)
    construct = next((c for prefix, c in _UNSUPPORTED if reason.startswith(prefix)), None)
    if reason.startswith(_BACK_REFERENCE) and reason[len(_BACK_REFERENCE) :][:1].isdigit():
        construct = "a back-reference \\N"
    elif reason == "invalid perl operator: (?P" and "(?P=" in regex:
        construct = "a back-reference (?P=name)"
    elif reason.startswith(_POSSESSIVE) and re2.search(r"[*+?}]\+\z", reason):
        construct = "a possessive quantifier"
    if construct is None:
        return reason
    return (
        f"{reason}: {construct} is not supported (patterns run on RE2, which matches in time "
        "linear in the text: no look-arounds, back-references, atomic groups or possessive "
        "quantifiers)"
    )
