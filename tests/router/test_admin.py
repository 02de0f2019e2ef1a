"""RouterAdmin and hot reload against a real server: auth, validate, reload under load, drain."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
import yaml

from router.api import router_pb2 as pb
from router.api import router_pb2_grpc as pb_grpc
from tests.conftest import SMOLLM2, request


def config(extra_backend: str = "gpu", **gpu: Any) -> dict[str, Any]:
    """The real edge model plus one scripted backend whose name and fields vary per version."""
    scripted = {"type": "scripted", "model": "big", "tier": "cloud_gpu", "context_window": 8192}
    scripted.update(gpu)
    return {
        "server": {"admin_loopback": True},
        "backends": {
            "edge": {
                "type": "llamacpp",
                "model": "smollm2",
                "gguf": SMOLLM2,
                "context_window": 1024,
                "threads": 2,
                "max_queue": 64,
            },
            extra_backend: scripted,
        },
        "policies": {"capability": {"type": "capability"}, "cost": {"type": "cost"}},
        "profiles": {"default": {"policies": [{"policy": "capability"}, {"policy": "cost"}]}},
    }


def text(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data)


async def test_get_validate_reload_and_explain(start_server):
    """Admin calls read the config, validate text with located errors, reload it and explain."""
    srv = await start_server(config())
    admin = pb_grpc.RouterAdminStub(srv.channel)
    info = await admin.GetConfig(pb.GetConfigRequest())
    assert info.version == srv.server.router.loaded.version and "edge" in info.text
    bad = text(config()).replace("type: cost", "type: csot")
    check = await admin.ValidateConfig(pb.ValidateConfigRequest(text=bad))
    assert not check.valid
    assert "did you mean 'cost'" in check.problems[0].reason
    assert check.problems[0].path == "policies.cost.type" and check.problems[0].line > 0
    good = text(config("api", tier="remote_api"))
    assert (await admin.ValidateConfig(pb.ValidateConfigRequest(text=good))).valid
    reloaded = await admin.ReloadConfig(pb.ReloadConfigRequest(text=good))
    assert reloaded.version != info.version
    decision = await admin.Explain(request())
    assert {c.backend for c in decision.candidates} == {"edge", "api"}
    assert decision.config_version == reloaded.version


async def test_invalid_reload_is_rejected_and_the_old_config_stays(start_server):
    """A bad config is INVALID_ARGUMENT naming the problem; decisions keep the old version."""
    srv = await start_server(config())
    admin = pb_grpc.RouterAdminStub(srv.channel)
    before = (await admin.GetConfig(pb.GetConfigRequest())).version
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await admin.ReloadConfig(pb.ReloadConfigRequest(text="backends: {}\n"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "backends" in err.value.details()
    assert (await srv.stub.Route(request())).config_version == before


async def test_admin_token_is_required_when_configured(start_server, monkeypatch):
    """With TOKENROUTER_ADMIN_TOKEN set, a missing or wrong token gets UNAUTHENTICATED."""
    monkeypatch.setenv("TOKENROUTER_ADMIN_TOKEN", "s3cret")
    srv = await start_server(config())
    admin = pb_grpc.RouterAdminStub(srv.channel)
    for metadata in ((), (("authorization", "Bearer wrong"),)):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await admin.GetConfig(pb.GetConfigRequest(), metadata=metadata)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    ok = await admin.GetConfig(
        pb.GetConfigRequest(), metadata=(("authorization", "Bearer s3cret"),)
    )
    assert ok.version


async def test_reload_under_load_loses_nothing_and_never_mixes_versions(start_server):
    """Continuous Generate and Route traffic through 20 reloads (some invalid): no failure, and
    every decision's candidates are exactly the backends of the version it names."""
    srv = await start_server(config())
    admin = pb_grpc.RouterAdminStub(srv.channel)
    edge = srv.server.router.backends["edge"]
    versions: dict[str, set[str]] = {srv.server.router.loaded.version: {"edge", "gpu"}}
    stop = asyncio.Event()
    decisions: list[pb.RouteDecision] = []
    failures: list[BaseException] = []

    async def traffic(kind: str) -> None:
        while not stop.is_set():
            try:
                if kind == "route":
                    decisions.append(await srv.stub.Route(request(privacy=pb.PUBLIC)))
                else:
                    async for msg in srv.stub.Generate(request(max_tokens=3)):
                        if msg.HasField("decision"):
                            decisions.append(msg.decision)
            except grpc.aio.AioRpcError as exc:
                failures.append(exc)

    workers = [asyncio.create_task(traffic(k)) for k in ("route", "route", "generate")]
    for i in range(20):
        if i % 4 == 3:
            with pytest.raises(grpc.aio.AioRpcError):
                await admin.ReloadConfig(pb.ReloadConfigRequest(text="backends: [oops\n"))
        else:
            name = f"gpu{i}"
            data = config(name, price={"input_per_mtok": float(i)})
            info = await admin.ReloadConfig(pb.ReloadConfigRequest(text=text(data)))
            versions[info.version] = {"edge", name}
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.gather(*workers)
    assert failures == []
    assert len(decisions) > 20
    for d in decisions:
        assert {c.backend for c in d.candidates} == versions[d.config_version]
    assert srv.server.router.backends["edge"] is edge  # unchanged backend kept: model stays loaded


async def test_removed_backend_drains_its_in_flight_stream(start_server):
    """A stream on a backend that a reload removes still completes; the backend then closes."""
    slow = config(token_interval_ms=50, text="one two three four five six seven eight")
    srv = await start_server(slow)
    admin = pb_grpc.RouterAdminStub(srv.channel)
    call = srv.stub.Generate(request(model="big", max_tokens=8))
    assert (await call.read()).decision.backend == "gpu"
    gpu = srv.server.router.backends["gpu"]
    await admin.ReloadConfig(pb.ReloadConfigRequest(text=text(config("other"))))
    words = []
    while (msg := await call.read()) is not grpc.aio.EOF:
        if msg.HasField("delta"):
            words.append(msg.delta.text)
        usage = msg.usage
    assert len(words) == 8 and usage.completion_tokens == 8
    for _ in range(100):
        if gpu.admitted == 0:
            break
        await asyncio.sleep(0.02)
    assert gpu.admitted == 0 and "gpu" not in srv.server.router.backends


async def test_editing_the_config_file_reloads_it(start_server, tmp_path):
    """The server watches its config file: a valid edit is applied, a broken one is ignored."""
    from router.config import load_config
    from router.server import RouterServer

    path = tmp_path / "router.yaml"
    path.write_text(text(config()))
    server = await RouterServer.start(load_config(path), host="127.0.0.1", port=0)
    try:
        first = server.router.loaded.version
        await asyncio.sleep(0.3)  # let the watcher start
        path.write_text(text(config("api", tier="remote_api")))
        for _ in range(100):
            if server.router.loaded.version != first:
                break
            await asyncio.sleep(0.05)
        second = server.router.loaded.version
        assert second != first and "api" in server.router.backends
        path.write_text("backends: {broken\n")
        await asyncio.sleep(1.0)
        assert server.router.loaded.version == second
        replacement = tmp_path / "router.yaml.tmp"  # how editors and deploy tools save
        replacement.write_text(text(config("gpu2")))
        replacement.replace(path)
        for _ in range(100):
            if "gpu2" in server.router.backends:
                break
            await asyncio.sleep(0.05)
        assert "gpu2" in server.router.backends  # the rename-save was applied
        path.write_text(text(config("gpu3")))  # and a plain write after the rename
        for _ in range(100):
            if "gpu3" in server.router.backends:
                break
            await asyncio.sleep(0.05)
        assert "gpu3" in server.router.backends
    finally:
        await server.stop(grace=0)
