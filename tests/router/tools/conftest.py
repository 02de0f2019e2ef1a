"""Fixtures for the tools' tests: `serve --workers` fleets killed whole at the end."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.workers_fleet import Fleet


@pytest.fixture
async def start() -> AsyncIterator[Callable[..., Any]]:
    """Starts fleets (Fleet.start); any still running at the end is killed with its workers."""
    fleets: list[Fleet] = []

    async def starter(config: Path, *extra: str) -> Fleet:
        fleets.append(await Fleet.start(config, *extra))
        return fleets[-1]

    yield starter
    for fleet in fleets:
        if fleet.proc.returncode is None:
            pids = {p for x in fleet.lines for p in x.get("workers", [x.get("worker")]) if p}
            for pid in (fleet.proc.pid, *pids):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        await fleet.finish()
