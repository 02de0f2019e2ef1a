"""A lean OpenAI-compatible upstream that outruns any client: chat-completion SSE, no model.

`POST /v1/chat/completions` streams `max_tokens` content chunks (token i is `f"t{i} "`), then a
finish chunk, a usage chunk and `data: [DONE]`, with chunked transfer encoding on a keep-alive
connection, as vLLM and llama.cpp's server do. `--burst K` writes K chunks per socket write and
`--gap-ms G` sleeps G ms between writes (bursty); by default every chunk is written at once. `GET
/v1/models` answers for probes. A raw asyncio protocol (no framework), so that it costs a small
share of what the router under test does. Usage:

    python -m benchmarks.sse_upstream --port 8011 [--burst 8 --gap-ms 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal

_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
_MODELS = b'{"object":"list","data":[{"id":"bench","object":"model"}]}'


def _chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def _event(doc: dict[str, object]) -> bytes:
    return _chunk(b"data: " + json.dumps(doc, separators=(",", ":")).encode() + b"\n\n")


def _content(i: int) -> bytes:
    delta = {"content": f"t{i} "}
    doc = {"id": "c", "object": "chat.completion.chunk", "model": "bench"}
    return _event({**doc, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})


class Upstream(asyncio.Protocol):
    """One connection: requests one after another (keep-alive)."""

    def __init__(self, burst: int, gap_s: float) -> None:
        self.burst = burst
        self.gap_s = gap_s
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.busy:
            self._next()

    def _next(self) -> None:
        head_end = self.buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return
        head = self.buffer[:head_end].decode("latin-1").split("\r\n")
        length = 0
        for line in head[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        if len(self.buffer) < head_end + 4 + length:
            return
        body = self.buffer[head_end + 4 : head_end + 4 + length]
        self.buffer = self.buffer[head_end + 4 + length :]
        method, path = head[0].split(" ")[:2]
        assert self.transport is not None
        if method == "POST" and path.endswith("/chat/completions"):
            self.busy = True
            tokens = int(json.loads(body).get("max_tokens") or 16)
            asyncio.get_running_loop().create_task(self._stream(tokens))
        else:
            status = b"200 OK" if path.endswith("/models") else b"404 Not Found"
            body = _MODELS if status == b"200 OK" else b"{}"
            self.transport.write(
                b"HTTP/1.1 %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                % (status, len(body), body)
            )
            self._next()

    async def _stream(self, tokens: int) -> None:
        transport = self.transport
        assert transport is not None
        transport.write(_HEAD)
        for start in range(0, tokens, self.burst):
            if transport.is_closing():
                return
            burst = range(start, min(start + self.burst, tokens))
            transport.write(b"".join(_content(i) for i in burst))
            if self.gap_s and start + self.burst < tokens:
                await asyncio.sleep(self.gap_s)
        stop = {"index": 0, "delta": {}, "finish_reason": "stop"}
        usage = {"prompt_tokens": 12, "completion_tokens": tokens, "total_tokens": 12 + tokens}
        transport.write(
            _event({"id": "c", "choices": [stop]})
            + _event({"id": "c", "choices": [], "usage": usage})
            + _chunk(b"data: [DONE]\n\n")
            + b"0\r\n\r\n"
        )
        self.busy = False
        self._next()


async def serve(host: str, port: int, burst: int, gap_s: float) -> None:
    """Serves until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Upstream(burst, gap_s), host, port, backlog=1024)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--burst", type=int, default=1, help="chunks per socket write")
    parser.add_argument("--gap-ms", type=float, default=0.0, help="pause between writes")
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port, max(1, args.burst), args.gap_ms / 1e3))


if __name__ == "__main__":
    main()
