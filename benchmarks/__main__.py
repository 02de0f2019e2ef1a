"""`python -m benchmarks [--quick] [--only NAME,...]`: runs the benchmark sections and reports.

Writes every figure to benchmarks/results/latest.json, appends the run to BENCHMARKS.md and prints
a summary of figure, value, target and whether it was met. Exits non-zero only when a section
fails to run; missed targets are reported, not fatal.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmarks import harness
from benchmarks.common import REPO_ROOT
from benchmarks.sections import SECTIONS

DEFAULT_RESULTS = REPO_ROOT / "benchmarks" / "results" / "latest.json"
DEFAULT_MARKDOWN = REPO_ROOT / "BENCHMARKS.md"


def main(
    argv: Sequence[str] | None = None, sections: Sequence[harness.SectionSpec] = SECTIONS
) -> int:
    names = [s.name for s in sections]
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs (CI: proves it works)")
    parser.add_argument("--only", help=f"comma-separated sections, of: {', '.join(names)}")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="JSON output")
    parser.add_argument(
        "--markdown", type=Path, default=DEFAULT_MARKDOWN, help="Markdown file to append to"
    )
    parser.add_argument("--no-markdown", action="store_true", help="do not append Markdown")
    args = parser.parse_args(argv)
    chosen = list(sections)
    if args.only:
        wanted = [n.strip() for n in args.only.split(",") if n.strip()]
        if unknown := [n for n in wanted if n not in names]:
            parser.error(f"unknown section(s) {', '.join(unknown)}; known: {', '.join(names)}")
        chosen = [s for s in sections if s.name in wanted]
    outcomes = harness.run_sections(chosen, args.quick)
    doc = harness.report(outcomes, args.quick)
    harness.write_json(doc, args.results)
    if not args.no_markdown:
        harness.append_markdown(doc, args.markdown)
    print(harness.summary_text(doc))
    print(
        f"\nresults: {args.results}"
        + ("" if args.no_markdown else f"; appended to {args.markdown}")
    )
    return 1 if doc["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
