"""A scripted HTTP/1.1 upstream for tests and benchmarks: OpenAI and Anthropic SSE, with faults.

    server = await FakeUpstream.start()          # 127.0.0.1, a free port
    server.script(Script(mode="status", status=500), Script(tokens=3))  # then the default
    OpenAIConfig(..., base_url=server.base_url)  # http://127.0.0.1:PORT/v1
    AnthropicConfig(..., base_url=server.root_url)
    await server.close()

Each generation request (POST .../chat/completions: OpenAI chunks; POST /v1/messages: Anthropic
events) takes the next queued `Script`, or `server.default` when the queue is empty. Token i is
the text `f"t{i} "`. Other endpoints: GET /metrics (vLLM gauges from `waiting`, `running`,
`kv_cache`, then `metrics_padding` bytes of comment lines; 404 when `serve_metrics` is False),
/health (200, or 503 when `healthy` is False), /v1/models; anything else is 404.
`await server.refuse()` stops listening and drops open connections (new ones are refused)
until `await server.resume()`. Counters: `requests` (every
request received, parsed), `open_connections`, `connections_accepted`, `active_streams`.
Plain asyncio streams; keep-alive connections; SSE bodies use chunked transfer encoding.

Replays: `Script(mode="replay", replay=load_recording("openai_tool_calls.sse"))` serves a
recorded body (tests/fakes/data, see its README) verbatim, one chunk per SSE event (`delay_s`
before each), whatever the request asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Mode = Literal[
    "normal",
    "status",
    "hangup",
    "hang",
    "stall",
    "close",
    "malformed",
    "error",
    "flood",
    "raw",
    "replay",
]
_MID_STREAM = ("stall", "close", "malformed", "error", "flood", "raw")
_FLOOD = b"x" * 65536
DATA = Path(__file__).resolve().parent / "data"


def load_recording(name: str) -> bytes:
    """The bytes of a recorded stream in tests/fakes/data (e.g. "anthropic_tool_use.sse")."""
    return (DATA / name).read_bytes()


def sse_events(body: bytes) -> list[bytes]:
    """A recorded body cut after each event's blank line (the pieces join to `body`)."""
    pieces = body.split(b"\n\n")
    events = [p + b"\n\n" for p in pieces[:-1]]
    return [*events, pieces[-1]] if pieces[-1] else events


@dataclass
class Script:
    """How to answer one generation request.

    mode: "normal" streams `tokens` tokens, sleeping `delay_s` before each; "status" answers
    `status` with `body` (default: a JSON error) and a Retry-After of `retry_after` if set;
    "hangup" closes the connection without answering; "hang" sends nothing until the client
    leaves; after `after` tokens, "stall" stops sending until the client leaves, "close" drops the
    connection, "malformed" sends an event of broken JSON and "error" an error event
    (`error_type`) and ends the stream, "flood" starts a `data:` line that never ends (64 KiB
    chunks until the client leaves) and "raw" sends the frames of `raw` (one chunk each) and
    ends the stream; "replay" serves the bytes of `replay` (a recording) verbatim. `bom`
    starts the stream with a byte-order mark, its bytes split across two chunks (OpenAI
    streams then leave out their optional head, so a `data:` line follows it). `finish` is the
    OpenAI finish_reason (Anthropic: "stop" is sent as end_turn, "length" as max_tokens,
    others as they are). `usage` False leaves usage out (OpenAI sends it only when asked by
    stream_options.include_usage).
    """

    mode: Mode = "normal"
    tokens: int = 5
    delay_s: float = 0.0
    after: int = 0
    status: int = 500
    retry_after: str | None = None
    body: str | None = None
    finish: str = "stop"
    usage: bool = True
    prompt_tokens: int = 11
    error_type: str = "overloaded_error"
    bom: bool = False
    raw: tuple[bytes, ...] = ()
    replay: bytes = b""


@dataclass
class Received:
    """A request as the server read it; `json` is the parsed body (None if empty or not JSON)."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any = None


_Frames = tuple[list[bytes], list[bytes], list[bytes], bytes]


class FakeUpstream:
    """See the module docstring."""

    default_model = "fake-model"

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.default = Script()
        self.waiting, self.running, self.kv_cache = 0, 0, 0.0
        self.healthy = True
        self.serve_metrics = True  # False: /metrics answers 404
        self.metrics_padding = 0  # bytes of comment lines appended to /metrics
        self.requests: list[Received] = []
        self.open_connections = 0
        self.connections_accepted = 0
        self.active_streams = 0
        self._queue: deque[Script] = deque()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @classmethod
    async def start(cls, host: str = "127.0.0.1", port: int = 0) -> FakeUpstream:
        server = cls(host, port)
        await server.resume()
        return server

    @property
    def root_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL, ending in /v1."""
        return self.root_url + "/v1"

    def script(self, *scripts: Script) -> None:
        """Queues scripts for the next generation requests, one each, in order."""
        self._queue.extend(scripts)

    async def resume(self) -> None:
        """Listens (again) on the same port."""
        if self._server is None:
            self._server = await asyncio.start_server(self._handle, self.host, self.port)
            self.port = self._server.sockets[0].getsockname()[1]

    async def refuse(self) -> None:
        """Stops listening and drops open connections, as a dead server: connections are refused."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        if self._tasks:  # the sockets close when their handlers end
            await asyncio.wait(self._tasks, timeout=2.0)

    async def close(self) -> None:
        """Stops listening and drops every connection."""
        await self.refuse()

    async def wait_until(self, condition: Callable[[], bool], timeout: float = 2.0) -> bool:
        """Polls `condition` until true or `timeout` seconds pass; returns its last value."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while not condition() and loop.time() < end:
            await asyncio.sleep(0.01)
        return condition()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task: Any = asyncio.current_task()
        self._tasks.add(task)
        self._writers.add(writer)
        self.open_connections += 1
        self.connections_accepted += 1
        try:
            while (req := await _read_request(reader)) is not None:
                self.requests.append(req)
                if not await self._respond(req, reader, writer):
                    break
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass  # the client left or sent garbage
        finally:
            self.open_connections -= 1
            self._tasks.discard(task)
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _respond(
        self, req: Received, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Answers one request; False when the connection must close."""
        path = req.path.split("?", 1)[0]
        if req.method == "POST" and (path.endswith("/chat/completions") or path == "/v1/messages"):
            self.active_streams += 1
            try:
                script = self._queue.popleft() if self._queue else self.default
                return await self._generate(req, script, reader, writer)
            finally:
                self.active_streams -= 1
        if path == "/metrics" and self.serve_metrics:
            m = f'{{model_name="{self.default_model}"}}'
            text = (
                "# TYPE vllm:num_requests_running gauge\n"
                f"vllm:num_requests_running{m} {float(self.running)}\n"
                f"vllm:num_requests_waiting{m} {float(self.waiting)}\n"
                f"vllm:gpu_cache_usage_perc{m} {self.kv_cache}\n"
            ) + ("#" * 1023 + "\n") * (self.metrics_padding // 1024)
            await _send(writer, 200, text.encode())
        elif path == "/health":
            await _send(writer, 200 if self.healthy else 503, b"{}")
        elif path.endswith("/models"):
            doc = {"object": "list", "data": [{"id": self.default_model, "object": "model"}]}
            await _send(writer, 200, json.dumps(doc).encode())
        else:
            await _send(writer, 404, b'{"detail": "Not Found"}')
        return True

    async def _generate(
        self, req: Received, s: Script, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        if s.mode == "hangup":
            return False
        if s.mode == "status":
            doc = {"error": {"type": "scripted_error", "message": f"scripted status {s.status}"}}
            body = s.body if s.body is not None else json.dumps(doc)
            extra = f"retry-after: {s.retry_after}\r\n" if s.retry_after else ""
            await _send(writer, s.status, body.encode(), extra)
            return True
        body = req.json if isinstance(req.json, dict) else {}
        anthropic = req.path.startswith("/v1/messages")
        head, tokens, tail, error = (_anthropic if anthropic else _openai)(s, body)
        if s.mode == "replay":
            head, tokens, tail = [], sse_events(s.replay), []
        if s.bom and not anthropic:
            head = []
        eof = asyncio.ensure_future(_wait_eof(reader))
        try:
            if s.mode == "hang":
                await eof
                return False
            status = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            writer.write((status + "transfer-encoding: chunked\r\n\r\n").encode())
            if s.bom:
                await writer.drain()
                writer.write(_chunk(b"\xef"))
                await writer.drain()
                writer.write(_chunk(b"\xbb\xbf"))
            for frame in head:
                writer.write(_chunk(frame))
            count = min(s.after, s.tokens) if s.mode in _MID_STREAM else s.tokens
            count = len(tokens) if s.mode == "replay" else count
            for frame in tokens[:count]:
                if s.delay_s:
                    await writer.drain()
                    await asyncio.wait({eof}, timeout=s.delay_s)
                    if eof.done():
                        return False
                writer.write(_chunk(frame))
            await writer.drain()
            if s.mode == "stall":
                await eof
            if s.mode in ("stall", "close"):
                return False
            if s.mode == "flood":
                writer.write(_chunk(b"data: "))
                while not eof.done():
                    writer.write(_chunk(_FLOOD))
                    await writer.drain()
                return False
            bad = b'data: {"choices": [{"delta": {"content": "t\n\n'
            ends = {"malformed": [bad], "error": [error], "raw": list(s.raw)}.get(s.mode, tail)
            writer.write(b"".join(map(_chunk, ends)) + b"0\r\n\r\n")
            await writer.drain()
            return True
        finally:
            eof.cancel()
            await asyncio.wait({eof})  # the reader is free again for the next request


def _sse(data: Any, event: str | None = None) -> bytes:
    text = json.dumps(data, ensure_ascii=False)
    return ((f"event: {event}\n" if event else "") + f"data: {text}\n\n").encode()


def _ev(kind: str, **fields: Any) -> bytes:
    """An Anthropic event: `event: kind` with data {"type": kind, **fields}."""
    return _sse({"type": kind, **fields}, kind)


def _openai(s: Script, body: dict[str, Any]) -> _Frames:
    """(head, token, tail, error) frames of a chat-completions stream."""
    model = body.get("model", FakeUpstream.default_model)

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return _sse({"object": "chat.completion.chunk", "model": model, "choices": [choice]})

    tail = [chunk({}, s.finish)]
    if s.usage and (body.get("stream_options") or {}).get("include_usage"):
        usage = {"prompt_tokens": s.prompt_tokens, "completion_tokens": s.tokens}
        tail.append(_sse({"object": "chat.completion.chunk", "choices": [], "usage": usage}))
    head = [b": keep-alive\n\n", chunk({"role": "assistant", "content": ""})]
    tokens = [chunk({"content": f"t{i} "}) for i in range(s.tokens)]
    error = _sse({"error": {"type": s.error_type, "message": "scripted error"}})
    return head, tokens, [*tail, b"data: [DONE]\n\n"], error


def _anthropic(s: Script, body: dict[str, Any]) -> _Frames:
    """(head, token, tail, error) frames of a Messages stream."""
    stop = {"stop": "end_turn", "length": "max_tokens"}.get(s.finish, s.finish)
    usage = {"input_tokens": s.prompt_tokens, "output_tokens": 1} if s.usage else {}
    message = {"role": "assistant", "model": body.get("model"), "content": [], "usage": usage}
    head = [_ev("message_start", message=message), _ev("ping")]
    head.insert(1, _ev("content_block_start", index=0, content_block={"type": "text", "text": ""}))
    tokens = [
        _ev("content_block_delta", index=0, delta={"type": "text_delta", "text": f"t{i} "})
        for i in range(s.tokens)
    ]
    end = {"stop_reason": stop, "stop_sequence": None}
    tail = [
        _ev("content_block_stop", index=0),
        _ev(
            "message_delta",
            delta=end,
            **({"usage": {"output_tokens": s.tokens}} if s.usage else {}),
        ),
        _ev("message_stop"),
    ]
    error = _ev("error", error={"type": s.error_type, "message": "scripted error"})
    return head, tokens, tail, error


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


async def _send(writer: asyncio.StreamWriter, status: int, body: bytes, extra: str = "") -> None:
    """A complete response; `extra` is more header lines, each ending in CRLF."""
    phrase = http.HTTPStatus(status).phrase if status in set(http.HTTPStatus) else "Scripted"
    ctype = "text/plain" if body[:1] not in (b"{", b"[") else "application/json"
    head = f"HTTP/1.1 {status} {phrase}\r\ncontent-type: {ctype}\r\n{extra}"
    writer.write(f"{head}content-length: {len(body)}\r\n\r\n".encode() + body)
    await writer.drain()


async def _read_request(reader: asyncio.StreamReader) -> Received | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    first, *rest = head.decode("latin-1").split("\r\n")
    method, path, _ = first.split(" ", 2)
    fields = (line.partition(":") for line in rest)
    headers = {k.strip().lower(): v.strip() for k, sep, v in fields if sep}
    received = Received(method, path, headers)
    if size := int(headers.get("content-length", "0")):
        with contextlib.suppress(ValueError):
            received.json = json.loads(await reader.readexactly(size))
    return received


async def _wait_eof(reader: asyncio.StreamReader) -> None:
    """Returns when the client closes its side (what it sends meanwhile is discarded)."""
    while await reader.read(4096):
        pass
