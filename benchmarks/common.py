"""Helpers shared by the benchmark sections: ports, percentiles, /proc readings and processes.

Servers under test run in their own process (`ServerProcess`), load generators in another
(`run_loadgen`, which runs `python -m benchmarks.loadgen` and parses the JSON it prints), so
the figures are those of one server process with the client's CPU kept out of it.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
_CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 1]); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (from /proc/<pid>/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "; fields[0] is state
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK  # utime, stime


def memory_mib(pid: int, key: str = "VmHWM") -> float:
    """A memory figure of a process in MiB from /proc/<pid>/status: VmHWM (peak RSS), VmRSS..."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {key} in /proc/{pid}/status")


def router_command(config_path: str, port: int) -> list[str]:
    """`tokenrouter serve` on a config file and port, logging warnings only."""
    return [
        sys.executable,
        "-m",
        "router.tools.cli",
        "serve",
        "--config",
        config_path,
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]


class ServerProcess:
    """A gRPC server in a child process, ready once it accepts connections on its port.

    `ServerProcess.router(config)` runs `tokenrouter serve` on a temporary copy of a config dict,
    `ServerProcess.echo()` the echo floor; `ServerProcess(argv, port, name)` runs any command
    that serves on `port`. As a context manager it stops the server (SIGTERM, then SIGKILL).
    """

    def __init__(self, argv: Sequence[str], port: int, name: str, ready_timeout_s: float = 120.0):
        self.argv = list(argv)
        self.port = port
        self.name = name
        self.ready_timeout_s = ready_timeout_s
        self.target = f"127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed in __exit__)
        self._cleanup: list[str] = []

    @classmethod
    def router(cls, config: dict[str, Any], name: str = "router") -> ServerProcess:
        port = free_port()
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            yaml.safe_dump(config, f, sort_keys=False)
        server = cls(router_command(f.name, port), port, name)
        server._cleanup.append(f.name)
        return server

    @classmethod
    def echo(cls, name: str = "echo", gap_ms: float = 0.0) -> ServerProcess:
        port = free_port()
        argv = [sys.executable, "-m", "benchmarks.echo_server", "--port", str(port)]
        argv += ["--gap-ms", str(gap_ms)]
        return cls(argv, port, name)

    @property
    def pid(self) -> int:
        assert self.proc is not None, "not started"
        return self.proc.pid

    def start(self) -> ServerProcess:
        self.proc = subprocess.Popen(self.argv, cwd=REPO_ROOT, stderr=self._stderr)
        deadline = time.monotonic() + self.ready_timeout_s
        with grpc.insecure_channel(self.target) as channel:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"{self.name} exited with {self.proc.returncode}: {self.log()}"
                    )
                ready = grpc.channel_ready_future(channel)
                try:
                    ready.result(timeout=0.2)
                    return self
                except grpc.FutureTimeoutError:
                    ready.cancel()  # its polling thread must stop before the channel closes
                    if time.monotonic() > deadline:
                        self.stop()
                        raise RuntimeError(
                            f"{self.name} not ready after {self.ready_timeout_s}s: {self.log()}"
                        ) from None

    def log(self, limit: int = 4000) -> str:
        """The tail of what the server wrote to stderr."""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")[-limit:]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for path in self._cleanup:
            Path(path).unlink(missing_ok=True)
        self._cleanup.clear()

    def close(self) -> None:
        """Stops the server and releases its log file and temporary config."""
        self.stop()
        self._stderr.close()

    def __enter__(self) -> ServerProcess:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def run_loadgen(args: Sequence[str], timeout_s: float) -> dict[str, Any]:
    """Runs `python -m benchmarks.loadgen ARGS` in its own process; returns the JSON it printed."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.loadgen", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"loadgen {' '.join(args)} failed ({done.returncode}): {done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])
