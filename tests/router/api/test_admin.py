"""RouterAdmin and hot reload against a real server: auth, validate, reload under load, drain."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import grpc
import pytest
import yaml

from router.api import router_pb2 as pb
from router.api import router_pb2_grpc as pb_grpc
from tests.conftest import SMOLLM2, request
from tests.router.api.test_server import ipv6_loopback


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
    from router.api.server import RouterServer
    from router.config import load_config

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


async def test_a_kubernetes_configmap_swap_reloads_every_time(tmp_path):
    """A config mounted the ConfigMap way (router.yaml -> ..data/router.yaml, `..data` swapped
    atomically and the old folder deleted) is reloaded on every swap, not only the first."""
    import os
    import shutil

    from router.api.server import RouterServer
    from router.config import load_config

    def publish(name: str, backend: str) -> None:
        folder = tmp_path / name
        folder.mkdir()
        (folder / "router.yaml").write_text(text(config(backend)))
        link = tmp_path / "..data_tmp"
        os.symlink(name, link)
        os.replace(link, tmp_path / "..data")  # the atomic swap kubelet makes

    publish("..v1", "gpu1")
    os.symlink("..data/router.yaml", tmp_path / "router.yaml")
    server = await RouterServer.start(load_config(tmp_path / "router.yaml"), port=0)
    try:
        await asyncio.sleep(0.3)  # let the watcher start
        for old, new, backend in (("..v1", "..v2", "gpu2"), ("..v2", "..v3", "gpu3")):
            publish(new, backend)
            shutil.rmtree(tmp_path / old)
            for _ in range(100):
                if backend in server.router.backends:
                    break
                await asyncio.sleep(0.05)
            assert backend in server.router.backends, (backend, list(server.router.backends))
    finally:
        await server.stop(grace=0)


SCRIPTED = {"backends": {"b": {"type": "scripted", "model": "m"}}}


async def start_scripted(host: str, data: dict[str, Any] | None = None):
    from router.api.server import RouterServer
    from tests.conftest import loaded

    return await RouterServer.start(loaded(data or SCRIPTED), host=host, port=0)


@pytest.mark.parametrize(
    "host",
    [pytest.param("127.0.0.1", id="ipv4"), pytest.param("::1", id="ipv6", marks=ipv6_loopback)],
)
async def test_tokenless_admin_on_loopback_is_opt_in_on_ipv4_and_ipv6(host, monkeypatch):
    """With no token, loopback clients (gRPC reports ::1 as ipv6:%5B::1%5D:port) are answered
    when server.admin_loopback is true, and refused with PERMISSION_DENIED when it is not."""
    monkeypatch.delenv("TOKENROUTER_ADMIN_TOKEN", raising=False)
    where = lambda port: f"[::1]:{port}" if host == "::1" else f"127.0.0.1:{port}"  # noqa: E731
    for allowed in (True, False):
        server = await start_scripted(host, {**SCRIPTED, "server": {"admin_loopback": allowed}})
        try:
            async with grpc.aio.insecure_channel(where(server.port)) as channel:
                admin = pb_grpc.RouterAdminStub(channel)
                if allowed:
                    info = await admin.GetConfig(pb.GetConfigRequest(), timeout=10)
                    assert info.version == server.router.loaded.version
                else:
                    with pytest.raises(grpc.aio.AioRpcError) as err:
                        await admin.GetConfig(pb.GetConfigRequest(), timeout=10)
                    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
                    assert "server.admin_loopback" in err.value.details()
        finally:
            await server.stop(grace=0)


async def test_tokenless_admin_is_answered_over_a_unix_socket(tmp_path, monkeypatch):
    """A server on unix:/path answers admin calls without a token (file permissions guard it)."""
    monkeypatch.delenv("TOKENROUTER_ADMIN_TOKEN", raising=False)
    socket_path = f"unix:{tmp_path}/router.sock"
    server = await start_scripted(socket_path)
    try:
        async with grpc.aio.insecure_channel(socket_path) as channel:
            info = await pb_grpc.RouterAdminStub(channel).GetConfig(pb.GetConfigRequest())
        assert info.version == server.router.loaded.version
        assert os.stat(socket_path.removeprefix("unix:")).st_mode & 0o777 == 0o600
    finally:
        await server.stop(grace=0)


async def test_tokenless_admin_is_refused_over_an_abstract_socket(monkeypatch):
    """An abstract Unix socket has no file permissions, so admin calls on it need the token."""
    monkeypatch.delenv("TOKENROUTER_ADMIN_TOKEN", raising=False)
    address = f"unix-abstract:tokenrouter-test-{os.getpid()}"
    server = await start_scripted(address)
    try:
        async with grpc.aio.insecure_channel(address) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await pb_grpc.RouterAdminStub(channel).GetConfig(pb.GetConfigRequest())
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    finally:
        await server.stop(grace=0)


async def test_admin_token_guards_loopback_too(start_server, monkeypatch):
    """With a token set, admin_loopback does not waive it: a tokenless loopback call is refused."""
    monkeypatch.setenv("TOKENROUTER_ADMIN_TOKEN", "s3cret")
    srv = await start_server({**SCRIPTED, "server": {"admin_loopback": True}})
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await pb_grpc.RouterAdminStub(srv.channel).GetConfig(pb.GetConfigRequest())
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_watcher_survives_a_latin1_save_and_applies_the_next_edit(tmp_path):
    """A file saved as Latin-1 is logged and skipped; the valid edit after it IS applied."""
    from structlog.testing import capture_logs

    from router.api.server import RouterServer
    from router.config import load_config

    path = tmp_path / "router.yaml"
    base = "backends:\n  b: {type: scripted, model: m}\n"
    path.write_text(base)
    server = await RouterServer.start(load_config(path), host="127.0.0.1", port=0)
    try:
        first = server.router.loaded.version
        await asyncio.sleep(0.3)  # let the watcher start
        with capture_logs() as logs:
            path.write_bytes(("# café\n" + base).encode("latin-1"))
            for _ in range(100):
                if any(e["event"].startswith("config rejected") for e in logs):
                    break
                await asyncio.sleep(0.05)
        (rejected,) = [e for e in logs if e["event"].startswith("config rejected")]
        assert "not UTF-8 text: byte 0xe9" in rejected["error"]
        assert server.router.loaded.version == first
        path.write_text(base + "  c: {type: scripted, model: n}\n")
        for _ in range(100):
            if "c" in server.router.backends:
                break
            await asyncio.sleep(0.05)
        assert "c" in server.router.backends
    finally:
        await server.stop(grace=0)


async def test_reload_of_undecodable_or_unparsable_text_is_invalid_argument(start_server, tmp_path):
    """A Latin-1 file, non-UTF-8 bytes on the wire and YAML nested 10k deep are each
    INVALID_ARGUMENT with the reason, never UNKNOWN or INTERNAL; ValidateConfig says invalid."""
    from router.api.server import RouterServer
    from router.config import load_config

    path = tmp_path / "router.yaml"
    path.write_text("server: {admin_loopback: true, watch_config: false}\n" + text(SCRIPTED))
    server = await RouterServer.start(load_config(path), host="127.0.0.1", port=0)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            admin = pb_grpc.RouterAdminStub(channel)
            path.write_bytes(path.read_bytes() + "# \xff\n".encode("latin-1"))
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await admin.ReloadConfig(pb.ReloadConfigRequest())
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "not UTF-8 text" in err.value.details()
            raw = channel.unary_unary("/tokenrouter.v1.RouterAdmin/ReloadConfig")
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await raw(b"\x0a\x02\xff\xfe")  # text = b"\xff\xfe"
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            deep = "a: " + "[" * 10_000 + "]" * 10_000 + "\n"
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await admin.ReloadConfig(pb.ReloadConfigRequest(text=deep))
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "config rejected" in err.value.details()
            check = await admin.ValidateConfig(pb.ValidateConfigRequest(text=deep))
            assert not check.valid and check.problems[0].reason
    finally:
        await server.stop(grace=0)


async def test_validate_config_runs_off_the_event_loop(start_server, monkeypatch):
    """ValidateConfig validates in a worker thread, not on the event loop's thread."""
    import threading

    import router.api.admin
    import router.config.validate

    threads: list[threading.Thread] = []
    real = router.config.validate.validate_text

    def spy(*args: Any, **kwargs: Any):  # type: ignore[no-untyped-def]
        threads.append(threading.current_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(router.api.admin, "validate_text", spy)
    srv = await start_server({**SCRIPTED, "server": {"admin_loopback": True}})
    admin = pb_grpc.RouterAdminStub(srv.channel)
    assert (await admin.ValidateConfig(pb.ValidateConfigRequest(text=text(SCRIPTED)))).valid
    assert threads and threading.main_thread() not in threads


def keyed_fleet(upstream_url: str, **server: Any) -> dict[str, Any]:
    """A config with one OpenAI-compatible backend that sends $UPSTREAM_KEY to the upstream."""
    api = {
        "type": "openai",
        "model": "gpt",
        "base_url": upstream_url,
        "api_key_env": "UPSTREAM_KEY",
    }
    return {"server": {"admin_loopback": True, **server}, "backends": {"api": api}}


async def test_sent_config_may_not_point_secrets_at_new_hosts_or_read_new_env(
    start_server, upstream, monkeypatch
):
    """A ReloadConfig text may keep a secret where it goes; a new variable or a new host needs
    server.reload_allow in the config the server started with (not in the sent text)."""
    monkeypatch.setenv("UPSTREAM_KEY", "k")
    url = upstream.base_url
    srv = await start_server(keyed_fleet(url, reload_allow={"env": ["SPARE_KEY"]}))
    admin = pb_grpc.RouterAdminStub(srv.channel)

    def sent(**api: Any) -> str:
        data = keyed_fleet(url, reload_allow={"env": ["HOME"], "hosts": ["evil.example"]})
        data["backends"]["api"].update(api)
        return text(data)

    refusals = [
        (sent(api_key_env="HOME"), "backends.api.api_key_env", "'HOME'"),
        (sent(base_url="http://evil.example/v1"), "backends.api.base_url", "'evil.example'"),
        (sent(base_url=url.replace("http:", "https:")), "backends.api.base_url", "UPSTREAM_KEY"),
        (sent(api_key_env="SPARE_KEY"), "backends.api.base_url", "SPARE_KEY"),
    ]
    for body, field, reason in refusals:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await admin.ReloadConfig(pb.ReloadConfigRequest(text=body))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, body
        assert field in err.value.details() and reason in err.value.details()
    assert srv.server.router.config.backends["api"].base_url == url
    fine = sent(price={"input_per_mtok": 2.0})  # same secret, same host
    info = await admin.ReloadConfig(pb.ReloadConfigRequest(text=fine))
    assert info.version == srv.server.router.loaded.version


async def test_reload_allow_lets_the_operator_approve_a_new_secret_and_host(
    start_server, upstream, monkeypatch
):
    """Variables in reload_allow.env and hosts in reload_allow.hosts are accepted from the API."""
    monkeypatch.setenv("UPSTREAM_KEY", "k")
    url = upstream.base_url
    allow = {"env": ["SPARE_KEY"], "hosts": ["localhost"]}
    srv = await start_server(keyed_fleet(url, reload_allow=allow))
    admin = pb_grpc.RouterAdminStub(srv.channel)
    data = keyed_fleet(url)
    data["backends"]["api"].update(
        api_key_env="SPARE_KEY", base_url=url.replace("127.0.0.1", "localhost")
    )
    await admin.ReloadConfig(pb.ReloadConfigRequest(text=text(data)))
    assert srv.server.router.config.backends["api"].api_key_env == "SPARE_KEY"
