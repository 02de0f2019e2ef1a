"""A worker's end of its link to the `serve --workers N` supervisor (router/tools/workers.py).

The supervisor hands each worker one end of a Unix socket pair, its descriptor number given in
the hidden `serve --worker-link FD` option. Once the worker serves, it writes `ready` on it; from
then on it watches the link, and the link closing (the supervisor exited or was killed) stops the
worker as SIGTERM would, draining first: a worker does not outlive its supervisor for longer
than its grace period.
"""

from __future__ import annotations

import asyncio
import socket

import structlog

READY = b"ready\n"
log = structlog.get_logger("tokenrouter")


class WorkerLink:
    """The inherited socket to the supervisor."""

    def __init__(self, fd: int) -> None:
        self._sock = socket.socket(fileno=fd)
        self._sock.setblocking(False)

    def ready(self, _server: object, stop: asyncio.Event) -> None:
        """Tells the supervisor this worker serves; sets `stop` when the supervisor is gone."""
        self._sock.send(READY)  # a few bytes into an empty socket buffer: never blocks
        asyncio.get_running_loop().add_reader(self._sock.fileno(), self._readable, stop)

    def _readable(self, stop: asyncio.Event) -> None:
        try:
            data = self._sock.recv(64)  # the supervisor sends nothing; anything else is dropped
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
            log.warning("the supervisor is gone; stopping")
            stop.set()
