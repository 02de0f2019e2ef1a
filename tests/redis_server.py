"""A real `redis-server` for tests: loopback, a free port, no persistence, stopped after.

The binary comes from the Debian package `redis-server` (.ci/run installs it on a fresh
machine); when it is missing and we are root, it is installed here the same way.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass
class RedisServer:
    """A running redis-server: `url` is redis://127.0.0.1:PORT/0."""

    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


def redis_binary() -> str:
    """The redis-server path, installing the Debian package first if needed (as root)."""
    found = shutil.which("redis-server")
    if found is None:
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "redis-server"],
            check=True,
            capture_output=True,
            timeout=600,
        )
        found = shutil.which("redis-server")
    if found is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def start_redis_server() -> Iterator[RedisServer]:
    """Starts redis-server on 127.0.0.1 and a free port; waits until it answers PING."""
    port = _free_port()
    argv = [redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    argv += ["--appendonly", "no", "--protected-mode", "yes", "--loglevel", "warning"]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start: {process.stderr}") from None
                time.sleep(0.05)
        yield RedisServer(port, process)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
