"""The benchmark harness: sections, checks against targets, and the JSON / Markdown reports.

A section is a function `fn(quick: bool) -> Section` registered by name in
`benchmarks.sections.SECTIONS`. It returns table rows (dicts; `columns` picks and orders what the
Markdown table shows, the JSON keeps every key) and summary `Check`s: a figure with its value and,
when it has one, its target and whether it was met. Targets are reported, never asserted: only a
section that raises makes the run fail.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.common import REPO_ROOT


@dataclass(frozen=True)
class Check:
    """One summary figure: value, unit, and optionally a target ("<= 1.5") and whether it is met."""

    figure: str
    value: float | None
    unit: str = ""
    target: str | None = None
    met: bool | None = None

    @classmethod
    def at_most(cls, figure: str, value: float, bound: float, unit: str = "") -> Check:
        ok = not math.isnan(value) and value <= bound
        return cls(figure, value, unit, f"<= {fmt(bound)} {unit}".strip(), ok)

    @classmethod
    def at_least(cls, figure: str, value: float, bound: float, unit: str = "") -> Check:
        ok = not math.isnan(value) and value >= bound
        return cls(figure, value, unit, f">= {fmt(bound)} {unit}".strip(), ok)

    @classmethod
    def info(cls, figure: str, value: float | None, unit: str = "") -> Check:
        """A measured figure with no target."""
        return cls(figure, value, unit)


@dataclass
class Section:
    """What a section measured: table rows, summary checks, notes and any raw data for the JSON."""

    columns: list[str]
    rows: list[dict[str, Any]]
    summary: list[Check]
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


SectionFn = Callable[[bool], Section]


@dataclass(frozen=True)
class SectionSpec:
    """A registered section: its name (for --only), a one-line title and its function."""

    name: str
    title: str
    fn: SectionFn


@dataclass
class Outcome:
    spec: SectionSpec
    section: Section | None
    elapsed_s: float
    error: str | None = None


def fmt(value: Any) -> str:
    """A compact human rendering: 1,234 / 12.3 / 0.123 / yes / -."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def machine() -> dict[str, Any]:
    """Where the run happened: OS, CPU, Python and the relevant library versions."""
    import google.protobuf
    import grpc

    cpu = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "platform": platform.platform(),
        "cpu": cpu or platform.processor(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
        "protobuf": google.protobuf.__version__,
    }


def git_commit() -> dict[str, Any]:
    """The short commit hash and whether the tree has uncommitted changes (read-only git calls)."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "--short", "HEAD"), "dirty": bool(status)}


def run_sections(specs: Sequence[SectionSpec], quick: bool) -> list[Outcome]:
    """Runs each section in turn; one that raises is recorded as failed and the rest still run."""
    outcomes = []
    for spec in specs:
        print(f"== {spec.name}: {spec.title}", file=sys.stderr, flush=True)
        started = time.perf_counter()
        try:
            section = spec.fn(quick)
            outcomes.append(Outcome(spec, section, time.perf_counter() - started))
        except Exception:
            error = traceback.format_exc()
            print(error, file=sys.stderr)
            outcomes.append(Outcome(spec, None, time.perf_counter() - started, error))
        print(f"   done in {outcomes[-1].elapsed_s:.1f} s", file=sys.stderr, flush=True)
    return outcomes


def report(outcomes: Sequence[Outcome], quick: bool) -> dict[str, Any]:
    """The JSON document of a run: metadata, every section's figures, and the summary."""
    sections: dict[str, Any] = {}
    summary: list[dict[str, Any]] = []
    for o in outcomes:
        entry: dict[str, Any] = {"title": o.spec.title, "elapsed_s": o.elapsed_s, "error": o.error}
        if o.section is not None:
            checks = [asdict(c) for c in o.section.summary]
            entry.update(
                columns=o.section.columns,
                rows=o.section.rows,
                summary=checks,
                notes=o.section.notes,
                data=o.section.data,
            )
            summary += [{"section": o.spec.name, **c} for c in checks]
        sections[o.spec.name] = entry
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "mode": "quick" if quick else "full",
        "machine": machine(),
        **git_commit(),
        "sections": sections,
        "summary": summary,
        "failed": [o.spec.name for o in outcomes if o.error is not None],
    }


def write_json(doc: dict[str, Any], path: Path) -> None:
    """Writes atomically (through a .tmp file next to it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(_finite(doc), indent=2, default=str, allow_nan=False) + "\n")
    tmp.replace(path)


def _finite(value: Any) -> Any:
    """`value` with NaN and infinities replaced by None, so the JSON is strict."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return lines


def _summary_rows(doc: dict[str, Any]) -> list[list[Any]]:
    return [
        [
            f"{s['section']}: {s['figure']}",
            f"{fmt(s['value'])} {s['unit']}".strip(),
            s["target"],
            s["met"],
        ]
        for s in doc["summary"]
    ]


def markdown(doc: dict[str, Any]) -> str:
    """The run as a Markdown section: metadata, each section's table and notes, the summary."""
    m = doc["machine"]
    commit = (doc["commit"] or "unknown") + (" (with uncommitted changes)" if doc["dirty"] else "")
    lines = [
        f"## {doc['date']} — {doc['mode']} run",
        "",
        f"Machine: {m['platform']}, {m['cpu']}, {m['cpu_count']} CPUs; Python {m['python']}, "
        f"grpcio {m['grpcio']}, protobuf {m['protobuf']}. Commit: {commit}.",
    ]
    for name, s in doc["sections"].items():
        lines += ["", f"### {name} — {s['title']}", ""]
        if s["error"]:
            lines += ["**FAILED**:", "", "```", s["error"].strip(), "```"]
            continue
        lines += _table(s["columns"], [[r.get(c) for c in s["columns"]] for r in s["rows"]])
        if s["notes"]:
            lines += ["", *(f"- {n}" for n in s["notes"])]
    lines += ["", "### Summary", ""]
    lines += _table(["figure", "value", "target", "met"], _summary_rows(doc))
    return "\n".join(lines) + "\n"


def append_markdown(doc: dict[str, Any], path: Path) -> None:
    """Appends the run to `path`, creating it with a short header first."""
    if not path.exists():
        path.write_text(
            "# Benchmarks\n\nAppended by `make bench` (`python -m benchmarks`), newest last. "
            "Targets are reported, not asserted; figures from a shared 2-core machine are noisy, "
            "compare ratios within one run.\n"
        )
    with path.open("a") as f:
        f.write("\n" + markdown(doc))


def summary_text(doc: dict[str, Any]) -> str:
    """The compact summary table printed at the end of a run."""
    rows = [[a, b, c or "-", fmt(d)] for a, b, c, d in _summary_rows(doc)]
    rows += [[f"{name}: FAILED", "-", "-", "-"] for name in doc["failed"]]
    headers = ["figure", "value", "target", "met?"]
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(4)]
    out = ["  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True))]
    out.append("  ".join("-" * w for w in widths))
    out += ["  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)
