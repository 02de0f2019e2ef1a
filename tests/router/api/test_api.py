"""The public API: the committed generated code matches proto/, and the limits every RPC keeps
(request sizes, RouteBatch size, a loop that large batches do not stall) on a real server."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import pytest

from router.api import router_pb2 as pb
from tests.conftest import request

ROOT = Path(__file__).resolve().parents[3]


def test_generated_code_is_up_to_date(tmp_path):
    """Regenerating from the .proto gives byte-identical files to the committed ones."""
    shutil.copytree(ROOT / "proto", tmp_path / "proto")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-Irouter/api=proto/tokenrouter/v1",
            "--python_out=.",
            "--grpc_python_out=.",
            "--pyi_out=.",
            "proto/tokenrouter/v1/router.proto",
        ],
        cwd=tmp_path,
        check=True,
    )
    for name in ("router_pb2.py", "router_pb2_grpc.py", "router_pb2.pyi"):
        fresh = (tmp_path / "router" / "api" / name).read_text()
        assert fresh == (ROOT / "router" / "api" / name).read_text(), f"run `make proto`: {name}"


def scripted_fleet(**limits: Any) -> dict[str, Any]:
    """Three scripted backends under a profile of five policies; `limits` sets config limits."""
    policies = ("capability", "privacy", "cost", "latency", "capacity")
    return {
        "limits": limits,
        "backends": {
            "gpu": {"type": "scripted", "model": "a", "context_window": 8192, "max_concurrency": 8},
            "api": {"type": "scripted", "model": "b", "tier": "remote_api", "context_window": 8192},
            "cpu": {"type": "scripted", "model": "c", "context_window": 8192},
        },
        "policies": {p: {"type": p} for p in policies},
        "profiles": {"default": {"policies": [{"policy": p} for p in policies]}},
    }


async def test_route_batch_over_the_limit_is_invalid_argument(start_server):
    """A RouteBatch with more than limits.max_batch_requests requests is refused naming
    `requests`; one at the limit is placed."""
    srv = await start_server(scripted_fleet(max_batch_requests=8))
    reply = await srv.stub.RouteBatch(pb.RouteBatchRequest(requests=[request()] * 8))
    assert len(reply.decisions) == 8 and all(d.backend for d in reply.decisions)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await srv.stub.RouteBatch(pb.RouteBatchRequest(requests=[request()] * 9))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details() == "requests: 9 requests exceed the limit of 8"


async def test_huge_bad_field_gets_a_short_invalid_argument(start_server):
    """A 100k-character role or tenant gets INVALID_ARGUMENT naming the field, not a status whose
    message is too large to deliver."""
    srv = await start_server(scripted_fleet())
    bad_role = pb.GenerateRequest(messages=[pb.Message(role="x" * 100_000, content="hi")])
    for msg, field in ((bad_role, "messages[0].role"), (request(tenant="t" * 100_000), "tenant")):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await srv.stub.Route(msg)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert err.value.details().startswith(f"{field}: ") and len(err.value.details()) < 200


async def route_latencies(stub: Any, stop: asyncio.Event, out: list[float]) -> None:
    """Sends one Route after another until `stop`, appending each call's latency to `out`."""
    while not stop.is_set():
        started = time.perf_counter()
        await stub.Route(request())
        out.append(time.perf_counter() - started)


async def test_large_route_batch_does_not_stall_concurrent_routes(start_server):
    """While a 1000-request RouteBatch is placed, Route calls keep being answered: the slowest
    one takes well under the batch's time (on a stalled loop it waits the whole batch)."""
    srv = await start_server(scripted_fleet())
    batch = pb.RouteBatchRequest(
        requests=[request(f"task {i}", tenant=f"t{i % 7}") for i in range(1000)]
    )
    await srv.stub.RouteBatch(batch)  # warm up
    ratios = []
    for _ in range(3):
        stop, latencies = asyncio.Event(), []
        prober = asyncio.create_task(route_latencies(srv.stub, stop, latencies))
        await asyncio.sleep(0.02)
        started = time.perf_counter()
        reply = await srv.stub.RouteBatch(batch)
        elapsed = time.perf_counter() - started
        stop.set()
        await prober
        assert len(reply.decisions) == 1000
        ratios.append(max(latencies) / elapsed)
    # Generous: a stalled loop gives ~1.0 every time; slicing gives ~0.1-0.4 on a busy machine.
    assert min(ratios) < 0.5, ratios


async def test_a_batch_of_short_near_miss_prompts_is_scanned_off_the_loop(start_server):
    """Short prompts that each cost the detectors a few ms (near misses for their validators)
    add up in a RouteBatch: their content scans run in worker threads, not on the event loop,
    so Route calls made meanwhile are not held behind them (a single such Route is scanned
    inline). Checked by where the scans run: latency ratios are at the GIL's mercy here."""
    srv = await start_server(scripted_fleet())
    rt = srv.server.router.runtime
    prepare, loop_thread, threads = rt.pipeline.prepare, threading.get_ident(), []

    def spy(ctx):  # type: ignore[no-untyped-def]
        threads.append(threading.get_ident())
        return prepare(ctx)

    rt.pipeline.prepare = spy
    text = ("+1 2 " * 800)[:4000]  # under the per-request inline limit, ~800 near misses
    reply = await srv.stub.RouteBatch(pb.RouteBatchRequest(requests=[request(text)] * 300))
    assert len(reply.decisions) == 300 and all(d.backend for d in reply.decisions)
    assert len(threads) == 300 and loop_thread not in threads
    threads.clear()
    await srv.stub.Route(request(text))
    assert threads == [loop_thread]
