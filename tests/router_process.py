"""Real `tokenrouter serve` processes for tests: their JSON log read as it comes
(`LoggedProcess`), and one router started on a free port (`RouterProcess`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

from router.api import router_pb2 as pb
from router.api import router_pb2_grpc as pb_grpc

CLI = [sys.executable, "-m", "router.tools.cli"]


async def serve(config: Path, *extra: str) -> asyncio.subprocess.Process:
    """`tokenrouter serve` on `config`, gRPC on a free port, JSON log lines on its stderr."""
    return await asyncio.create_subprocess_exec(
        *CLI,
        "serve",
        "--config",
        str(config),
        "--port",
        "0",
        "--log-json",
        *extra,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


class LoggedProcess:
    """A child process whose stderr lines are kept in `lines` (JSON ones decoded)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[dict[str, Any]] = []
        self._new = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        async for raw in self.proc.stderr:
            text = raw.decode(errors="replace")
            self.lines.append(json.loads(text) if text.startswith("{") else {"text": text})
            self._new.set()
        self._new.set()

    async def line(self, match: Callable[[dict[str, Any]], bool], timeout: float = 30) -> dict:
        """The first log line `match` accepts, waiting for it up to `timeout` s (an
        AssertionError showing the last lines when it does not come, or the log ended)."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.lines:
                if match(line):
                    return line
            self._new.clear()
            left = deadline - time.monotonic()
            if left <= 0 or self._reader.done():
                raise AssertionError(f"no such line in {self.lines[-20:]}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new.wait(), min(left, 1.0))


class RouterProcess(LoggedProcess):
    """One `serve` process; `port` is its gRPC port once `start` returned."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        super().__init__(proc)
        self.port = 0
        self.channel: grpc.aio.Channel | None = None

    @classmethod
    async def start(cls, config: Path, *extra: str) -> RouterProcess:
        self = cls(await serve(config, *extra))
        serving = await self.line(lambda x: x.get("event") == "serving")
        self.port = int(serving["port"])
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{self.port}")
        return self

    @property
    def stub(self) -> pb_grpc.TokenRouterStub:
        return pb_grpc.TokenRouterStub(self.channel)

    @property
    def admin(self) -> pb_grpc.RouterAdminStub:
        return pb_grpc.RouterAdminStub(self.channel)

    async def stop(self, timeout: float = 30) -> int:
        """SIGTERM (a graceful drain), then the exit code."""
        if self.channel is not None:
            await self.channel.close()
        if self.proc.returncode is None:
            self.proc.terminate()
        await asyncio.wait_for(self.proc.wait(), timeout)
        await self._reader
        return self.proc.returncode or 0

    async def kill(self) -> None:
        """SIGKILL: a crash, nothing released."""
        self.proc.kill()
        await self.proc.wait()
        await self._reader


def request(tenant: str, max_tokens: int, text: str = "hello") -> pb.GenerateRequest:
    return pb.GenerateRequest(
        tenant=tenant, max_tokens=max_tokens, messages=[pb.Message(role="user", content=text)]
    )


async def generate(stub: pb_grpc.TokenRouterStub, req: pb.GenerateRequest) -> pb.Usage:
    """Runs one Generate to its end; its usage (raises grpc.aio.AioRpcError on failure)."""
    usage = None
    async for message in stub.Generate(req, timeout=60):
        if message.HasField("usage"):
            usage = message.usage
    assert usage is not None
    return usage
