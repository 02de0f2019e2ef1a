"""How many router processes share this machine's cores.

`tokenrouter serve --workers N` (router/tools/workers.py) starts N processes and tells each one N
in the environment (`TOKENROUTER_WORKERS`); a backend that uses CPU threads defaults to its share
of the cores, so N workers do not each claim all of them.
"""

from __future__ import annotations

import os

WORKERS_ENV = "TOKENROUTER_WORKERS"


def worker_count() -> int:
    """The number of router processes on this machine (1 unless run as a worker)."""
    text = os.environ.get(WORKERS_ENV, "")[:8]
    return int(text) if text.isdigit() and int(text) > 0 else 1


def cpu_share() -> int:
    """The cores one process uses by default: all of them over the number of workers, at least 1."""
    return max(1, (os.cpu_count() or 1) // worker_count())
