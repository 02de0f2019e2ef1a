"""Training rows from request logs: one per attempt that produced a token, in time order.

A log line is read only up to MAX_LINE bytes (longer ones, and lines that are not a JSON object,
are counted as skipped), so reading costs time linear in the files' size whatever they hold.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from router.predict.features import observation

MAX_LINE = 64 << 10


@dataclass
class Observations:
    rows: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0  # lines that were not a request-log record
    records: int = 0  # records read


def read_logs(paths: Iterable[str | Path]) -> Observations:
    """Every attempt of every record in `paths`, sorted by arrival time (blocking I/O)."""
    found = Observations()
    for path in paths:
        with Path(path).open("rb") as f:
            while line := f.readline(MAX_LINE + 1):
                if len(line) > MAX_LINE:
                    found.skipped += 1
                    while line and not line.endswith(b"\n"):  # the rest of the long line
                        line = f.readline(MAX_LINE + 1)
                    continue
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    found.skipped += 1
                    continue
                if not isinstance(record, dict) or not isinstance(record.get("attempts"), list):
                    found.skipped += 1
                    continue
                found.records += 1
                for attempt in record["attempts"]:
                    if isinstance(attempt, dict) and (row := observation(record, attempt)):
                        found.rows.append(row)
    found.rows.sort(key=lambda row: row["ts"])
    return found
