"""Closed-loop gRPC load generator (grpc.aio), run in its own process by the benchmark sections.

N concurrent workers each send one call after another for `--warmup` seconds (not counted), then
for `--duration` seconds (measured); with `--server-pid` it also reads the server's CPU time at
the start and end of the measured window. Prints one JSON object. Usage:

    python -m benchmarks.loadgen route --target 127.0.0.1:50051 --concurrency 64 --duration 5
    python -m benchmarks.loadgen generate --target ... --concurrency 200 --max-tokens 200
    python -m benchmarks.loadgen chat --target ... --http-port 8080   # or `messages`

`chat` and `messages` post non-streaming OpenAI Chat Completions / Anthropic Messages requests
to the HTTP face (one keep-alive connection per worker, the answer read by its Content-Length)
and count finished requests as streams.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc

from benchmarks.common import cpu_seconds, percentile
from router.api import router_pb2 as pb
from router.api import router_pb2_grpc as pb_grpc

PROMPT = (
    "Summarise the following meeting notes in three bullet points. The team reviewed the Q3 "
    "roadmap, agreed to ship the routing dashboard first, moved the billing migration to the "
    "next sprint and asked the platform group for two more GPU nodes in the EU region."
)


@dataclass
class Window:
    """The measured window: workers record only while `measuring`."""

    measuring: bool = False
    stopped: bool = False
    errors: int = 0
    first_error: str = ""
    latencies_s: list[float] = field(default_factory=list)  # per call (route) / TTFT (generate)
    count: int = 0  # calls completed (route) / delta messages received (generate)
    tokens: int = 0  # generate: completion tokens of the streams, as their usage counts them
    streams: int = 0  # generate: streams completed
    solvers: Counter[str] = field(default_factory=Counter)  # route: decisions per solver tier
    batch_sizes: int = 0  # route: sum of the decisions' batch sizes
    server_ttft_ms: list[float] = field(default_factory=list)  # generate: as the router saw it

    def error(self, exc: grpc.aio.AioRpcError) -> None:
        if self.measuring:
            self.errors += 1
            self.first_error = self.first_error or f"{exc.code().name}: {exc.details()}"


Worker = Callable[[pb_grpc.TokenRouterStub, Window], Awaitable[None]]


async def route_worker(
    stub: pb_grpc.TokenRouterStub, w: Window, request: pb.GenerateRequest, interval_s: float = 0.0
) -> None:
    """Route after Route; with `interval_s`, at most one call per interval (paced)."""
    loop = asyncio.get_running_loop()
    next_at = loop.time() + random.uniform(0, interval_s)
    while not w.stopped:
        if interval_s:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            next_at = max(next_at + interval_s, loop.time())
        started = time.perf_counter()
        try:
            decision = await stub.Route(request, timeout=30)
        except grpc.aio.AioRpcError as exc:
            w.error(exc)
            continue
        if w.measuring:
            w.latencies_s.append(time.perf_counter() - started)
            w.count += 1
            w.solvers[decision.solver] += 1
            w.batch_sizes += decision.batch_size


async def generate_worker(
    stub: pb_grpc.TokenRouterStub, w: Window, request: pb.GenerateRequest
) -> None:
    """Stream after stream. The first asks for a random share of max_tokens, so that streams end
    at different times (a steady state, not synchronized waves of simultaneous starts)."""
    first_request = pb.GenerateRequest()
    first_request.CopyFrom(request)
    first_request.max_tokens = random.randint(1, request.max_tokens)
    next_request = first_request
    while not w.stopped:
        started = time.perf_counter()
        first = True
        counted = w.measuring  # TTFT only of streams begun inside the window
        call, next_request = stub.Generate(next_request, timeout=120), request
        try:
            async for response in call:
                if response.HasField("delta"):
                    if w.measuring:
                        w.count += 1
                    if first and counted:
                        w.latencies_s.append(time.perf_counter() - started)
                    first = False
                elif response.HasField("usage"):
                    if w.measuring:
                        w.tokens += response.usage.completion_tokens
                    if counted:
                        w.server_ttft_ms.append(response.usage.ttft_ms)
        except grpc.aio.AioRpcError as exc:
            w.error(exc)
            continue
        if w.measuring:
            w.streams += 1


def http_body(kind: str, max_tokens: int) -> bytes:
    """The POST of one non-streaming `chat` (OpenAI) or `messages` (Anthropic) request."""
    path = "/v1/chat/completions" if kind == "chat" else "/v1/messages"
    body = json.dumps(
        {
            "model": "auto",
            "max_tokens": max_tokens,
            "messages": [{"role": "user", "content": PROMPT}],
        }
    ).encode()
    head = f"POST {path} HTTP/1.1\r\nhost: bench\r\ncontent-type: application/json\r\n"
    return head.encode() + b"content-length: %d\r\n\r\n%s" % (len(body), body)


async def http_worker(_stub: object, w: Window, host: str, port: int, post: bytes) -> None:
    """Request after request on one keep-alive connection."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while not w.stopped:
            started = time.perf_counter()
            writer.write(post)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            answer = await reader.readexactly(length)
            if not head.startswith(b"HTTP/1.1 200"):
                if w.measuring:
                    w.errors += 1
                    w.first_error = w.first_error or answer.decode(errors="replace")[:200]
                continue
            if w.measuring:
                w.latencies_s.append(time.perf_counter() - started)
                w.streams += 1
                w.count += 1
    finally:
        writer.close()


async def drive(args: argparse.Namespace, worker: Worker) -> dict[str, Any]:
    """Runs `args.concurrency` workers through warm-up and the measured window."""
    channels = [
        grpc.aio.insecure_channel(args.target, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(args.channels)
    ]
    stubs = [pb_grpc.TokenRouterStub(c) for c in channels]
    for channel in channels:
        await asyncio.wait_for(channel.channel_ready(), 30)
    w = Window()
    tasks = [asyncio.create_task(worker(stubs[i % len(stubs)], w)) for i in range(args.concurrency)]
    await asyncio.sleep(args.warmup)
    server_cpu0 = cpu_seconds(args.server_pid) if args.server_pid else 0.0
    client_cpu0, started = time.process_time(), time.perf_counter()
    w.measuring = True
    await asyncio.sleep(args.duration)
    w.measuring = False
    wall = time.perf_counter() - started
    client_cpu = time.process_time() - client_cpu0
    server_cpu = cpu_seconds(args.server_pid) - server_cpu0 if args.server_pid else None
    w.stopped = True
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for channel in channels:
        await channel.close()
    ms = [s * 1e3 for s in w.latencies_s]
    return {
        "concurrency": args.concurrency,
        "paced_rate": args.rate,
        "window_s": wall,
        "count": w.count,
        "rate_per_s": w.count / wall,
        "streams": w.streams,
        "tokens": w.tokens,
        "errors": w.errors,
        "first_error": w.first_error,
        "latency_samples": len(ms),
        "p50_ms": percentile(ms, 0.50),
        "p90_ms": percentile(ms, 0.90),
        "p99_ms": percentile(ms, 0.99),
        "mean_ms": sum(ms) / len(ms) if ms else float("nan"),
        "server_ttft_p50_ms": percentile(w.server_ttft_ms, 0.50),
        "server_ttft_p99_ms": percentile(w.server_ttft_ms, 0.99),
        "solvers": dict(w.solvers),
        "mean_batch_size": w.batch_sizes / w.count if w.count else 0.0,
        "server_cpu_s": server_cpu,
        "client_cpu_s": client_cpu,
    }


def _request(args: argparse.Namespace) -> pb.GenerateRequest:
    return pb.GenerateRequest(
        messages=[pb.Message(role="user", content=PROMPT)], max_tokens=args.max_tokens
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", choices=["route", "generate", "chat", "messages"])
    parser.add_argument("--target", required=True)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--rate", type=float, help="route: pace to this many calls/s in all")
    parser.add_argument("--channels", type=int, default=1, help="connections to spread over")
    parser.add_argument("--server-pid", type=int, help="read this process's CPU time")
    parser.add_argument("--http-port", type=int, help="chat, messages: the HTTP face's port")
    args = parser.parse_args(argv)
    request = _request(args)
    if args.kind in ("chat", "messages"):
        host = args.target.rsplit(":", 1)[0]
        post = http_body(args.kind, args.max_tokens)
        worker = functools.partial(http_worker, host=host, port=args.http_port, post=post)
    elif args.kind == "route":
        interval = args.concurrency / args.rate if args.rate else 0.0
        worker = functools.partial(route_worker, request=request, interval_s=interval)
    else:
        worker = functools.partial(generate_worker, request=request)
    result = asyncio.run(drive(args, worker))
    print(json.dumps({"kind": args.kind, **result}))


if __name__ == "__main__":
    main()
