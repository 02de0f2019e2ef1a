"""structlog set-up: JSON lines when stderr is not a terminal, readable columns when it is.

With `serve --workers N` the supervisor and its workers share stderr, so each line names its
process (`pid`), and goes out in one write (print() writes the newline separately: on an
unbuffered stderr, PYTHONUNBUFFERED=1 as containers often set, two processes' lines would mix).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog


def _add_pid(_logger: object, _name: str, event: MutableMapping[str, Any]) -> Any:
    event["pid"] = os.getpid()
    return event


def configure(level: str = "info", json: bool | None = None, *, pid: bool = False) -> None:
    """Configures structlog once for the process; `json` defaults to "stderr is not a TTY";
    `pid`: every line carries the process id."""
    if json is None:
        json = not sys.stderr.isatty()
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            *([_add_pid] if pid else []),
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
