"""The protocol floor: a gRPC server that answers Route and Generate at once, with no routing.

Same grpcio, same asyncio server, same options and the same generated TokenRouter handlers as
the router (so the GenerateRequest is parsed and the answers serialized the same way); no
policy work at all. Route returns an empty RouteDecision; Generate streams what a routed stream
of `max_tokens` messages carries: a decision, `max_tokens` deltas and the usage (the bare
streaming floor for the relay benchmark), with `--gap-ms` between deltas (a paced floor).
Usage:

    python -m benchmarks.echo_server --port 50099
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import AsyncIterator

import grpc

from router.api import router_pb2 as pb
from router.api import router_pb2_grpc as pb_grpc


class EchoService(pb_grpc.TokenRouterServicer):
    """Route answers an empty decision, Generate a canned stream; the rest stay UNIMPLEMENTED."""

    def __init__(self, gap_s: float = 0.0) -> None:
        self.gap_s = gap_s

    async def Route(
        self, request: pb.GenerateRequest, context: grpc.aio.ServicerContext
    ) -> pb.RouteDecision:
        return pb.RouteDecision()

    async def Generate(
        self, request: pb.GenerateRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.GenerateResponse]:
        n = request.max_tokens
        yield pb.GenerateResponse(decision=pb.RouteDecision(backend="echo"))
        for i in range(n):
            if self.gap_s and i:
                await asyncio.sleep(self.gap_s)
            yield pb.GenerateResponse(delta=pb.Delta(text=f"t{i} "))
        yield pb.GenerateResponse(usage=pb.Usage(completion_tokens=n, finish_reason="stop"))


async def serve(host: str, port: int, gap_s: float = 0.0) -> None:
    """Serves until SIGTERM or SIGINT."""
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])  # as router/api/server.py
    pb_grpc.add_TokenRouterServicer_to_server(EchoService(gap_s), server)
    server.add_insecure_port(f"{host}:{port}")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--gap-ms", type=float, default=0.0, help="Generate: pause per delta")
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port, args.gap_ms / 1e3))


if __name__ == "__main__":
    main()
