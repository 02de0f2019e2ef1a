"""`tokenrouter serve --workers N` as real processes: shared ports, drain, reload, restarts."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.router_process import CLI
from tests.workers_fleet import fetch, pids_answering, write

BASE = "server: {watch_config: false, grace_period_s: 10}\nbackends:\n"
SLOW = "  b: {type: scripted, model: m, text: '%s', token_interval_ms: 100}\n" % ("word " * 20)


async def test_two_workers_both_serve_on_shared_ports(tmp_path, start):
    """With --workers 2 the supervisor reports two worker pids, both answer HTTP on the one
    port over fresh connections, gRPC health answers on the shared gRPC port, SIGTERM exits 0."""
    fleet = await start(write(tmp_path, BASE + SLOW), "--workers", "2")
    try:
        serving = await fleet.serving()
        pids = set(serving["workers"])
        assert len(pids) == 2 and fleet.proc.pid not in pids
        assert await pids_answering(serving["http_port"], pids) == pids
        async with grpc.aio.insecure_channel(f"127.0.0.1:{serving['port']}") as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=10
            )
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        fleet.proc.send_signal(signal.SIGTERM)
    assert await fleet.finish() == 0


async def _stream(port: int, opened: asyncio.Queue) -> bytes:
    """A streamed chat completion over a fresh connection; puts the answering pid on `opened`
    once the head arrived, returns the whole body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = json.dumps(
        {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    ).encode()
    writer.write(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nconnection: close\r\n"
        b"content-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 200"), head
    await opened.put(int(re.search(rb"x-tokenrouter-worker: (\d+)", head).group(1)))
    rest = await asyncio.wait_for(reader.read(), 20)
    writer.close()
    return rest


async def test_sigterm_drains_both_workers(tmp_path, start):
    """SIGTERM to the supervisor lets a slow stream running on each worker finish whole, then
    both workers and the supervisor exit 0."""
    fleet = await start(write(tmp_path, BASE + SLOW), "--workers", "2")
    serving = await fleet.serving()
    pids = set(serving["workers"])
    opened: asyncio.Queue[int] = asyncio.Queue()
    streams, seen = [], set()
    for _ in range(60):  # streams on fresh connections until both workers run one
        streams.append(asyncio.create_task(_stream(serving["http_port"], opened)))
        seen.add(await opened.get())
        if seen == pids:
            break
    assert seen == pids
    fleet.proc.send_signal(signal.SIGTERM)
    bodies = await asyncio.gather(*streams)
    assert all(b"[DONE]" in body and body.count(b"word") == 20 for body in bodies)
    assert await fleet.finish() == 0
    stopped = {x["pid"] for x in fleet.lines if x.get("event") == "stopped"}
    assert pids | {fleet.proc.pid} <= stopped
    assert not any(x.get("event", "").startswith("a worker") for x in fleet.lines)


async def test_sighup_reloads_both_workers(tmp_path, start):
    """After the config file changes and the supervisor gets SIGHUP, /metrics on both workers
    reports the new config version."""
    path = write(tmp_path, BASE + SLOW)
    fleet = await start(path, "--workers", "2")
    try:
        serving = await fleet.serving()
        pids = set(serving["workers"])
        old = (await fleet.line(lambda x: x.get("event") == "serving" and "config_version" in x))[
            "config_version"
        ]
        path.write_text(BASE + SLOW + "  c: {type: scripted, model: n}\n")
        fleet.proc.send_signal(signal.SIGHUP)
        versions: dict[int, str] = {}
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            _, headers, body = await fetch(serving["http_port"], "/metrics")
            version = re.search(rb'tokenrouter_config_info\{version="(\w+)"\}', body).group(1)
            versions[int(headers["x-tokenrouter-worker"])] = version.decode()
            if set(versions) == pids and old not in versions.values():
                break
        assert set(versions) == pids and old not in versions.values(), versions
        reloaded = [x for x in fleet.lines if x.get("event") == "config reloaded"]
        assert {x["pid"] for x in reloaded} == pids
        assert {x["config_version"] for x in reloaded} == set(versions.values())
    finally:
        fleet.proc.send_signal(signal.SIGTERM)
    assert await fleet.finish() == 0


async def test_a_killed_worker_is_restarted_with_a_growing_backoff(tmp_path, start):
    """A worker killed with SIGKILL is logged with its exit code and replaced by a new worker
    that serves on the same port; killed again soon after, it is restarted after twice the
    delay."""
    fleet = await start(write(tmp_path, BASE + SLOW), "--workers", "2")
    try:
        serving = await fleet.serving()
        victim, other = serving["workers"]
        delays = []
        for _ in range(2):
            os.kill(victim, signal.SIGKILL)
            exited = await fleet.line(lambda x, v=victim: x.get("worker") == v and "exit_code" in x)
            assert exited["event"] == "a worker exited; restarting it"
            assert exited["exit_code"] == -signal.SIGKILL
            delays.append(exited["restart_in_s"])
            restarted = await fleet.line(lambda x, v=victim: x.get("previous") == v)
            assert restarted["event"] == "worker restarted"
            victim = restarted["worker"]
            assert await pids_answering(serving["http_port"], {victim, other}) == {victim, other}
        assert delays == [0.5, 1.0]
    finally:
        fleet.proc.send_signal(signal.SIGTERM)
    assert await fleet.finish() == 0


async def test_workers_stop_when_the_supervisor_is_killed(tmp_path, start):
    """SIGKILL to the supervisor closes the workers' links: both drain, log `stopped` and exit,
    so nothing keeps serving on the ports."""
    fleet = await start(write(tmp_path, BASE + SLOW), "--workers", "2")
    pids = set((await fleet.serving())["workers"])
    fleet.proc.kill()
    assert await fleet.finish() == -signal.SIGKILL  # returns once every worker closed stderr
    gone = [x for x in fleet.lines if x.get("event") == "the supervisor is gone; stopping"]
    assert {x["pid"] for x in gone} == pids
    assert {x["pid"] for x in fleet.lines if x.get("event") == "stopped"} == pids


async def test_sigterm_to_every_process_at_once_stops_without_restarts(tmp_path, start):
    """SIGTERM to the workers and the supervisor together (as systemd sends it to a unit's
    processes) stops everything with exit 0 and restarts nothing."""
    fleet = await start(write(tmp_path, BASE + SLOW), "--workers", "2")
    pids = (await fleet.serving())["workers"]
    for pid in (*pids, fleet.proc.pid):
        os.kill(pid, signal.SIGTERM)
    assert await fleet.finish() == 0
    assert not any("restart" in x.get("event", "") for x in fleet.lines)


async def test_a_worker_that_does_not_drain_is_killed_after_grace_and_margin(tmp_path, start):
    """A worker that cannot act on SIGTERM (stopped with SIGSTOP) is killed once the grace
    period and the margin passed; the other drains; the supervisor exits 1."""
    from router.tools.workers import KILL_MARGIN_S

    config = BASE.replace("grace_period_s: 10", "grace_period_s: 1") + SLOW
    fleet = await start(write(tmp_path, config), "--workers", "2")
    hung, other = (await fleet.serving())["workers"]
    os.kill(hung, signal.SIGSTOP)
    began = time.monotonic()
    fleet.proc.send_signal(signal.SIGTERM)
    assert await fleet.finish() == 1
    assert 1 + KILL_MARGIN_S - 0.5 < time.monotonic() - began < 1 + KILL_MARGIN_S + 5
    killed = [x for x in fleet.lines if x.get("event", "").startswith("a worker did not drain")]
    assert [x["worker"] for x in killed] == [hung]
    assert other in {x["pid"] for x in fleet.lines if x.get("event") == "stopped"}


async def test_a_bad_config_fails_fast_with_exit_2(tmp_path, start):
    """An invalid config file stops `serve --workers 2` with exit 2 and the problem, before any
    worker starts."""
    path = write(tmp_path, BASE + "  b: {type: scripted, model: m, ttft_ms: -1}\n")
    started = time.monotonic()
    fleet = await start(path, "--workers", "2")
    assert await fleet.finish() == 2
    assert time.monotonic() - started < 15
    text = "".join(x.get("text", "") for x in fleet.lines)
    assert f"invalid config: {path}:3" in text and "backends.b.ttft_ms" in text
    assert not any(x.get("event") == "serving" for x in fleet.lines)


async def test_a_worker_failing_at_start_up_stops_the_whole_thing(tmp_path, start):
    """A worker that cannot start (its tenant keys file is missing) makes the supervisor exit
    with the worker's code 2 and its message, stopping the other worker, with no restart."""
    missing = tmp_path / "nope.yaml"
    path = write(tmp_path, f"server: {{tenant_keys_file: '{missing}'}}\nbackends:\n" + SLOW)
    fleet = await start(path, "--workers", "2")
    assert await fleet.finish() == 2
    failed = await fleet.line(lambda x: x.get("event") == "a worker failed at start-up; stopping")
    assert failed["exit_code"] == 2
    text = "".join(x.get("text", "") for x in fleet.lines)
    assert f"invalid config: {missing}" in text and "cannot read keys file" in text
    assert not any("restart" in x.get("event", "") for x in fleet.lines)


async def test_a_port_in_use_fails_fast_naming_the_setting(tmp_path, start):
    """An HTTP port held by another process stops `serve --workers 2` with exit 2 naming
    server.http_port, instead of joining or fighting over it."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        fleet = await start(
            write(tmp_path, BASE + SLOW), "--workers", "2", "--http-port", str(port)
        )
        assert await fleet.finish() == 2
    text = "".join(x.get("text", "") for x in fleet.lines)
    assert f"server.http_port: cannot bind 127.0.0.1:{port}" in text


async def test_workers_option_is_checked():
    """`--workers 0` and `--workers many` are refused with exit 2 naming the option."""
    for bad in ("0", "many"):
        proc = await asyncio.create_subprocess_exec(
            *CLI, "serve", "--workers", bad, stderr=asyncio.subprocess.PIPE
        )
        _, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 2 and b"--workers: expected auto or a count" in err


async def test_one_worker_is_the_single_process_as_before(tmp_path, start):
    """`--workers 1` runs no supervisor: one process serves, its log lines carry no pid and its
    responses no worker header."""
    fleet = await start(write(tmp_path, BASE + SLOW), "--workers", "1")
    try:
        serving = await fleet.line(lambda x: x.get("event") == "serving")
        assert "workers" not in serving and "pid" not in serving
        status, headers, _ = await fetch(serving["http_port"], "/healthz")
        assert status == 200 and "x-tokenrouter-worker" not in headers
    finally:
        fleet.proc.send_signal(signal.SIGTERM)
    assert await fleet.finish() == 0


async def test_each_worker_serves_its_own_llamacpp_model(tmp_path, start):
    """With an in-process SmolLM2 backend, both workers load the model and answer chat
    completions from it."""
    import yaml

    from tests.conftest import edge_config

    config = edge_config()
    config["backends"]["edge-smollm2"].pop("threads")
    fleet = await start(write(tmp_path, yaml.safe_dump(config)), "--workers", "2")
    try:
        serving = await fleet.serving()
        pids, seen = set(serving["workers"]), set()
        body = {
            "model": "smollm2",
            "max_tokens": 2,
            "messages": [{"role": "user", "content": "Hi"}],
        }
        for _ in range(60):
            status, headers, answer = await fetch(
                serving["http_port"], "/v1/chat/completions", body
            )
            assert status == 200 and headers["x-tokenrouter-backend"] == "edge-smollm2", answer
            seen.add(int(headers["x-tokenrouter-worker"]))
            if seen == pids:
                break
        assert seen == pids
    finally:
        fleet.proc.send_signal(signal.SIGTERM)
    assert await fleet.finish() == 0
