"""A real `redis-server` for tests: loopback, a free port, no persistence, stopped after.

The binary comes from the Debian package `redis-server` (.ci/run installs it on a fresh
machine); when it is missing and we are root, it is installed here the same way.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator


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


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """A running redis-server on 127.0.0.1: `url` is redis://127.0.0.1:PORT/0.

    `persistent`: an append-only file synced on every write in a temporary folder, so that
    `kill()` then `start()` (an outage: the same port, the data kept) loses nothing."""

    def __init__(self, persistent: bool = False) -> None:
        self.port = _free_port()
        self._folder = tempfile.TemporaryDirectory(prefix="redis-") if persistent else None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Starts (or restarts) the server on its port; waits until it answers PING."""
        argv = [redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        argv += ["--protected-mode", "yes", "--loglevel", "warning"]
        if self._folder is not None:
            argv += ["--dir", self._folder.name, "--appendonly", "yes", "--appendfsync", "always"]
        else:
            argv += ["--appendonly", "no"]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while not _answers(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start: {self.process.stderr}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL, as a crash: clients see their connections reset, then refused."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self._folder is not None:
            self._folder.cleanup()


@contextlib.contextmanager
def start_redis_server(persistent: bool = False) -> Iterator[RedisServer]:
    """Starts redis-server on 127.0.0.1 and a free port (see RedisServer); stops it after."""
    server = RedisServer(persistent)
    try:
        server.start()
        yield server
    finally:
        server.stop()
