"""`tokenrouter serve --workers N` as a real process tree for tests: the supervisor with its
log (its own lines and its workers'), and raw HTTP requests over fresh connections (so the
kernel spreads them over the workers)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from tests.router_process import LoggedProcess, serve


class Fleet(LoggedProcess):
    """A `serve --workers` supervisor with its JSON log lines (its own and its workers')."""

    @classmethod
    async def start(cls, config: Path, *extra: str) -> Fleet:
        return cls(await serve(config, "--http-port", "0", *extra))

    async def serving(self) -> dict:
        """The supervisor's `serving` line (with the workers' pids and the ports)."""
        return await self.line(lambda x: x.get("event") == "serving" and "workers" in x)

    async def finish(self, timeout: float = 30) -> int:
        await asyncio.wait_for(self.proc.wait(), timeout)
        await self._reader
        return self.proc.returncode


async def fetch(port: int, path: str, body: dict | None = None) -> tuple[int, dict, bytes]:
    """One request over a fresh connection: status, headers, the whole body (raw)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    data = json.dumps(body).encode() if body is not None else b""
    method = "POST" if body is not None else "GET"
    writer.write(
        f"{method} {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n"
        f"content-type: application/json\r\ncontent-length: {len(data)}\r\n\r\n".encode()
        + data
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    lines = head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
    rest = await asyncio.wait_for(reader.read(), 20)
    writer.close()
    return int(lines[0].split()[1]), headers, rest


async def pids_answering(port: int, want: set[int], tries: int = 200) -> set[int]:
    """Sends /healthz over fresh connections until every pid in `want` answered (at most
    `tries`); returns the pids seen."""
    seen: set[int] = set()
    for _ in range(tries):
        status, headers, _ = await fetch(port, "/healthz")
        assert status == 200
        seen.add(int(headers["x-tokenrouter-worker"]))
        if want <= seen:
            break
    return seen


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "router.yaml"
    path.write_text(text)
    return path
