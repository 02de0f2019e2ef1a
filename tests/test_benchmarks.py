"""The benchmark harness works: quick route_overhead and load sections with tiny durations.

Real processes (router, echo server, load generators) on 127.0.0.1; figures are not checked,
only that the report has them and that the summary lists targets with met flags.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from benchmarks import __main__ as bench
from benchmarks import load, route_overhead
from benchmarks.harness import SectionSpec


def test_quick_harness_writes_results_and_summary(tmp_path: Path, capsys) -> None:
    sections = [
        SectionSpec(
            "route_overhead",
            "Route vs echo",
            functools.partial(route_overhead.run, duration_s=0.3, warmup_s=0.1, rounds=1),
        ),
        SectionSpec(
            "load",
            "Generate streams",
            functools.partial(load.run, streams=8, tokens=20, duration_s=0.5, warmup_s=0.1),
        ),
    ]
    results, markdown = tmp_path / "latest.json", tmp_path / "BENCHMARKS.md"
    argv = ["--quick", "--results", str(results), "--markdown", str(markdown)]
    assert bench.main(argv, sections=sections) == 0

    doc = json.loads(results.read_text())
    assert doc["mode"] == "quick" and doc["failed"] == []
    assert {"date", "machine", "commit", "dirty", "sections", "summary"} <= doc.keys()
    assert {"platform", "cpu_count", "python", "grpcio"} <= doc["machine"].keys()
    ro = doc["sections"]["route_overhead"]
    loads = {(r["server"], r["load"]) for r in ro["rows"]}
    assert {("echo", "c=1"), ("router", "c=1"), ("echo", "c=64"), ("router", "c=64")} <= loads
    assert all(r["errors"] == 0 and r["calls"] > 0 for r in ro["rows"])
    [row] = doc["sections"]["load"]["rows"]
    assert row["errors"] == 0 and row["tokens"] > 0 and row["peak_rss_mib"] > 0
    assert row["server_cpu_s_per_1k_tokens"] > 0

    figures = {(s["section"], s["figure"]): s for s in doc["summary"]}
    for key in [
        ("route_overhead", "Route/echo p50 ratio c=1"),
        ("route_overhead", "max Route/s (1 process)"),
        ("route_overhead", "Route p99 c=64 (closed loop)"),
        ("load", "stream errors"),
    ]:
        assert figures[key]["target"] and isinstance(figures[key]["met"], bool)
        assert isinstance(figures[key]["value"], float)
    assert figures[("load", "stream errors")]["met"] is True

    text = markdown.read_text()
    assert "### route_overhead" in text and "### load" in text and "### Summary" in text
    printed = capsys.readouterr().out
    assert "met?" in printed and "Route/echo p50 ratio c=1" in printed


def test_failing_section_is_reported_not_fatal_to_others(tmp_path: Path) -> None:
    def broken(quick: bool):
        raise RuntimeError("boom")

    def fine(quick: bool):
        from benchmarks.harness import Check, Section

        return Section(["x"], [{"x": 1}], [Check.at_least("x", 1.0, 2.0)])

    sections = [SectionSpec("broken", "raises", broken), SectionSpec("fine", "works", fine)]
    results = tmp_path / "r.json"
    assert bench.main(["--results", str(results), "--no-markdown"], sections=sections) == 1
    doc = json.loads(results.read_text())
    assert doc["failed"] == ["broken"] and "boom" in doc["sections"]["broken"]["error"]
    assert doc["summary"] == [
        {"section": "fine", "figure": "x", "value": 1.0, "unit": "", "target": ">= 2", "met": False}
    ]
