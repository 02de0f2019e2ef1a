"""The tokenrouter command against a real server: serve, generate, route, backends."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

CLI = [sys.executable, "-m", "router.tools.cli"]


async def run_cli(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *CLI, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    return proc.returncode, out.decode(), err.decode()


async def test_generate_streams_and_prints_decision_and_usage(start_server):
    """`tokenrouter generate` prints the model's text, then the decision and usage lines."""
    srv = await start_server()
    code, out, err = await run_cli(
        "generate", "Say hi", "--max-tokens", "5", "--target", srv.target, "--privacy", "internal"
    )
    assert code == 0, err
    assert out.strip()
    assert "decision: backend=edge-smollm2" in err and "completion_tokens=" in err


async def test_route_prints_decision_json_and_backends_lists(start_server):
    """`tokenrouter route` prints the decision as JSON; `backends` lists the edge backend."""
    srv = await start_server()
    code, out, err = await run_cli("route", "Hello", "--target", srv.target)
    assert code == 0, err
    decision = json.loads(out)
    assert decision["backend"] == "edge-smollm2" and decision["tier"] == "EDGE"
    code, out, _ = await run_cli("backends", "--target", srv.target)
    assert code == 0 and json.loads(out)[0]["name"] == "edge-smollm2"


async def test_server_error_is_printed_with_status(start_server):
    """A refused request prints the status code and message and exits 1."""
    srv = await start_server()
    code, _, err = await run_cli("route", "Hello", "--profile", "nope", "--target", srv.target)
    assert code == 1 and "INVALID_ARGUMENT: profile: unknown profile 'nope'" in err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_serve_runs_embedded_config_and_stops_on_sigterm():
    """`tokenrouter serve` serves the embedded config, logs JSON, and exits 0 on SIGTERM."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        *CLI,
        "serve",
        "--port",
        str(port),
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        reply = await stub.Check(health_pb2.HealthCheckRequest(), wait_for_ready=True, timeout=60)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    proc.send_signal(signal.SIGTERM)
    _, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 0
    lines = [json.loads(line) for line in err.decode().splitlines() if line.startswith("{")]
    assert {"serving", "stopped"} <= {line["event"] for line in lines}


async def test_serve_with_invalid_config_exits_nonzero_naming_the_problem(tmp_path):
    """An invalid config file makes `serve` exit 2 with file, line, YAML path and reason."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "backends:\n  edge:\n    type: llamacpp\n    model: m\n    gguf: x.gguf\n    replicas: -3\n"
    )
    code, _, err = await run_cli("serve", "--config", str(bad))
    assert code == 2
    assert f"{bad}:6:15: backends.edge.replicas: Input should be greater than or equal to 1" in err


async def test_route_explain_prints_a_readable_candidate_table(start_server):
    """`tokenrouter route --explain` prints the decision headline and one row per backend."""
    from tests.router.placement.test_routing import fleet

    srv = await start_server(fleet())
    code, out, err = await run_cli(
        "route", "Summarise: call me at +44 20 7946 0958", "--explain", "--target", srv.target
    )
    assert code == 0, err
    assert "privacy CONFIDENTIAL (detected: phone)" in out and "solver single" in out
    lines = out.splitlines()
    header = lines[4].split()
    assert header[:1] == ["backend"] and "cost" in header and "latency" in header
    assert sum(line.startswith("*") for line in lines[5:]) == 1
    (api_row,) = [line for line in lines[5:] if line.split()[0] == "api"]
    assert "privacy: CONFIDENTIAL request (detected: phone) may not use a third_party" in api_row


async def test_replay_subcommand_reports_both_configs():
    """`tokenrouter replay` runs the simulator with its own options and prints A, B and B - A."""
    data = "tests/router/data"
    code, out, err = await run_cli(
        "replay",
        "--trace",
        f"{data}/azure_tiny.csv",
        "--config",
        f"{data}/replay_a.yaml",
        "--compare",
        f"{data}/replay_b.yaml",
    )
    assert code == 0, err
    assert "B - A" in out and "privacy violations" in out


async def test_sighup_reloads_the_config_file(tmp_path):
    """SIGHUP re-reads the config file; an admin GetConfig then shows the new version."""
    from router.api import router_pb2 as pb
    from router.api import router_pb2_grpc as pb_grpc

    port = free_port()
    path = tmp_path / "router.yaml"
    base = (
        "server: {watch_config: false, admin_loopback: true}\n"
        "backends:\n  b: {type: scripted, model: m}\n"
    )
    path.write_text(base)
    proc = await asyncio.create_subprocess_exec(
        *CLI, "serve", "--config", str(path), "--port", str(port), stderr=asyncio.subprocess.PIPE
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            admin = pb_grpc.RouterAdminStub(channel)
            first = await admin.GetConfig(pb.GetConfigRequest(), wait_for_ready=True, timeout=60)
            path.write_text(base + "  c: {type: scripted, model: n}\n")
            proc.send_signal(signal.SIGHUP)
            for _ in range(100):
                info = await admin.GetConfig(pb.GetConfigRequest())
                if info.version != first.version:
                    break
                await asyncio.sleep(0.05)
            assert info.version != first.version and "c:" in info.text
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 0


async def test_serve_on_ipv6_loopback_answers_and_non_loopback_is_refused(tmp_path, monkeypatch):
    """`serve --host ::1` serves on [::1]; `--host 0.0.0.0` without an admin token exits 2
    naming it, and with one but without TLS and keys, exits 2 pointing at --insecure."""
    from tests.router.api.test_server import _has_ipv6_loopback

    path = tmp_path / "router.yaml"
    path.write_text("backends:\n  b: {type: scripted, model: m}\n")
    monkeypatch.delenv("TOKENROUTER_ADMIN_TOKEN", raising=False)
    code, _, err = await run_cli("serve", "--config", str(path), "--host", "0.0.0.0")
    assert code == 2 and "refusing to start" in err and "TOKENROUTER_ADMIN_TOKEN" in err
    monkeypatch.setenv("TOKENROUTER_ADMIN_TOKEN", "t0ken")
    code, _, err = await run_cli("serve", "--config", str(path), "--host", "::")
    assert code == 2 and "--insecure" in err and "Traceback" not in err
    if not _has_ipv6_loopback():
        return
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        *CLI,
        "serve",
        "--config",
        str(path),
        "--host",
        "::1",
        "--port",
        str(port),
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with grpc.aio.insecure_channel(f"[::1]:{port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            reply = await stub.Check(
                health_pb2.HealthCheckRequest(), wait_for_ready=True, timeout=60
            )
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 0


async def test_generate_offers_tools_from_files_and_prints_the_calls(start_server, tmp_path):
    """`generate --tool FILE.json --tool-choice NAME` sends the tools and prints each call."""
    tool = {"name": "get_time", "description": "the time", "parameters": {"type": "object"}}
    (tmp_path / "time.json").write_text(json.dumps(tool))
    srv = await start_server(
        {
            "backends": {
                "b": {
                    "type": "scripted",
                    "model": "m",
                    "tool_calls": [{"name": "get_time", "arguments": {"tz": "UTC"}}],
                }
            }
        }
    )
    code, out, err = await run_cli(
        "generate",
        "time?",
        "--tool",
        str(tmp_path / "time.json"),
        "--tool-choice",
        "get_time",
        "--target",
        srv.target,
    )
    assert code == 0, err
    (line,) = [x for x in out.splitlines() if x.startswith("tool_call: ")]
    call = json.loads(line.removeprefix("tool_call: "))
    assert call["name"] == "get_time" and json.loads(call["arguments"]) == {"tz": "UTC"}
    assert "finish_reason=tool_calls" in err


async def test_json_schema_file_implies_the_feature_and_bad_files_are_named(start_server, tmp_path):
    """--json-schema makes placement require json_schema; an unreadable file exits 2 naming it."""
    (tmp_path / "out.json").write_text('{"type": "object"}')
    srv = await start_server(
        {
            "backends": {"b": {"type": "scripted", "model": "m", "features": ["streaming"]}},
            "policies": {"capability": {"type": "capability"}},
            "profiles": {"default": {"policies": [{"policy": "capability"}]}},
        }
    )
    code, _, err = await run_cli(
        "route", "hi", "--json-schema", str(tmp_path / "out.json"), "--target", srv.target
    )
    assert code == 1 and "lacks feature json_schema" in err
    code, _, err = await run_cli("route", "hi", "--tool", str(tmp_path / "missing.json"))
    assert code == 2 and "--tool" in err and "missing.json" in err
