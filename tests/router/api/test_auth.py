"""Tenant API keys against a real server: the tenant comes from the key, keys reload, never leak."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from structlog.testing import capture_logs

from router.api import keys
from router.api import router_pb2 as pb
from router.api import router_pb2_grpc as pb_grpc
from router.api.server import RouterServer
from router.client import AsyncRouterClient
from router.config import parse_config
from tests.conftest import request


def keyed_config(keys_file: Path, **server: Any) -> dict[str, Any]:
    return {
        "server": {"tenant_keys_file": str(keys_file), **server},
        "backends": {"b": {"type": "scripted", "model": "m", "text": "one two three"}},
    }


@pytest.fixture
async def keyed(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """Starts a server on 127.0.0.1 with a keys file holding one key for `acme`."""
    servers: list[tuple[RouterServer, grpc.aio.Channel]] = []

    async def start(**server: Any) -> tuple[RouterServer, pb_grpc.TokenRouterStub, str]:
        path = tmp_path / "keys.yaml"
        _, key = keys.create_key(path, "acme")
        loaded = parse_config(yaml.safe_dump(keyed_config(path, **server)), "<test>")
        srv = await RouterServer.start(loaded, host="127.0.0.1", port=0)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{srv.port}")
        servers.append((srv, channel))
        return srv, pb_grpc.TokenRouterStub(channel), key

    yield start
    for srv, channel in servers:
        await channel.close()
        await srv.stop(grace=0)


def bearer(key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),)


async def refused(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        result = call
        if hasattr(result, "read"):
            while await result.read() is not grpc.aio.EOF:
                pass
        else:
            await result
    return err.value


def test_keys_file_stores_hashes_and_the_key_is_shown_once(tmp_path):
    """`keys create` returns a key whose hash, not the key, is in the file; list and revoke work."""
    path = tmp_path / "keys.yaml"
    entry, key = keys.create_key(path, "acme")
    text = path.read_text()
    assert key not in text and keys.hash_key(key) in text and entry.id in key
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert keys.load_keys(path)[entry.id].tenant == "acme"
    assert keys.revoke_key(path, entry.id) == entry and keys.load_keys(path) == {}
    with pytest.raises(ValueError, match="tenant"):
        keys.create_key(path, "bad tenant\n")


async def test_keys_cli_creates_lists_and_revokes(tmp_path):
    """`tokenrouter keys create --tenant acme` prints the key on stdout only; list omits it."""
    path = str(tmp_path / "k.yaml")

    async def cli(*args: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "router.tools.cli", "keys", *args, "--file", path),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
        return proc.returncode or 0, out.decode(), err.decode()

    code, out, err = await cli("create", "--tenant", "acme")
    key = out.strip()
    assert code == 0 and key.startswith("trk_") and "shown only now" in err and key not in err
    ident = keys.key_id(key)
    code, out, _ = await cli("list")
    assert code == 0 and ident in out and "acme" in out and key not in out
    assert (await cli("revoke", ident or ""))[0] == 0
    assert (await cli("revoke", ident or ""))[0] == 1


async def test_missing_or_wrong_key_is_unauthenticated_on_every_tokenrouter_rpc(keyed):
    """Generate, Route, RouteBatch and ListBackends need a valid key; health stays open."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    srv, stub, key = await keyed()
    calls = {
        "Generate": lambda md: stub.Generate(request(), metadata=md),
        "Route": lambda md: stub.Route(request(), metadata=md),
        "RouteBatch": lambda md: stub.RouteBatch(
            pb.RouteBatchRequest(requests=[request()]), metadata=md
        ),
        "ListBackends": lambda md: stub.ListBackends(pb.ListBackendsRequest(), metadata=md),
    }
    wrong = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    for name, call in calls.items():
        for md in ((), bearer(wrong), bearer("trk_nothex_x"), (("authorization", key),)):
            err = await refused(call(md))
            assert err.code() == grpc.StatusCode.UNAUTHENTICATED, (name, md)
        assert await asyncio.wait_for(_ok(call(bearer(key))), 10)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{srv.port}") as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_an_unknown_caller_is_refused_before_its_message_is_parsed(keyed):
    """Without a valid key, even bytes that are no message get UNAUTHENTICATED: the key is
    checked first, so an unknown caller costs no parsing."""
    srv, _, key = await keyed()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{srv.port}") as channel:
        raw = channel.unary_unary("/tokenrouter.v1.TokenRouter/Route")
        junk = b"\x12\x03\x0a\x01\xff"  # messages[0].role = b"\xff": not UTF-8
        err = await refused(raw(junk))
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED
        err = await refused(raw(junk, metadata=bearer(key)))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT


async def _ok(call: Any) -> bool:
    if hasattr(call, "read"):
        while await call.read() is not grpc.aio.EOF:
            pass
        return True
    return bool(await call is not None)


async def test_the_tenant_comes_from_the_key(keyed, tmp_path):
    """A request naming no tenant runs as the key's; naming another tenant is PERMISSION_DENIED,
    in RouteBatch for any entry, naming it."""
    srv, stub, key = await keyed(request_log=str(tmp_path / "requests.jsonl"))
    async for _ in stub.Generate(request(), metadata=bearer(key)):
        pass
    async for _ in stub.Generate(request(tenant="acme"), metadata=bearer(key)):
        pass
    err = await refused(stub.Generate(request(tenant="globex"), metadata=bearer(key)))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED and err.details().startswith("tenant:")
    err = await refused(stub.Route(request(tenant="globex"), metadata=bearer(key)))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    batch = pb.RouteBatchRequest(requests=[request(), request(tenant="acme"), request(tenant="x")])
    err = await refused(stub.RouteBatch(batch, metadata=bearer(key)))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert err.details().startswith("requests[2].tenant:")
    await srv.stop(grace=0)
    lines = [json.loads(x) for x in (tmp_path / "requests.jsonl").read_text().splitlines()]
    assert [line["tenant"] for line in lines] == ["acme", "acme"]


async def test_keys_file_changes_are_picked_up_by_the_watch_and_by_sighup(keyed, tmp_path):
    """A key created after start works once the file watch sees it; a revoked one stops working;
    reload_files (what SIGHUP runs) re-reads the file too; a broken file keeps the old keys."""
    srv, stub, first = await keyed()
    path = tmp_path / "keys.yaml"
    await asyncio.sleep(0.3)  # let the watcher start
    entry, second = keys.create_key(path, "globex")

    async def works(key: str) -> bool:
        try:
            await stub.ListBackends(pb.ListBackendsRequest(), metadata=bearer(key))
            return True
        except grpc.aio.AioRpcError:
            return False

    for _ in range(100):
        if await works(second):
            break
        await asyncio.sleep(0.05)
    assert await works(second) and await works(first)
    entries = keys.load_keys(path)
    path.write_text("keys: [broken\n")
    await asyncio.sleep(1.0)
    assert await works(second)  # a broken file changes nothing
    keys.write_keys(path, [e for e in entries.values() if e.id != entry.id])
    for _ in range(100):
        if not await works(second):
            break
        await asyncio.sleep(0.05)
    assert not await works(second) and await works(first)
    srv._stop_watching.set()  # from here on only an explicit reload re-reads the file
    await asyncio.sleep(0.3)
    _, third = keys.create_key(path, "initech")
    assert not await works(third)
    await srv.reload_files()
    assert await works(third)


async def test_keys_never_appear_in_logs_or_errors(keyed, capsys):
    """Valid, wrong and malformed keys: none of them shows up in a log line or an error message."""
    with capture_logs() as logs:
        srv, stub, key = await keyed()
        wrong = key[:-1] + ("x" if key[-1] != "x" else "y")
        seen: list[str] = []
        for md in (bearer(wrong), bearer("trk_0123456789ab_secretsecret"), bearer(key)):
            try:
                async for _ in stub.Generate(request(tenant="other"), metadata=md):
                    pass
            except grpc.aio.AioRpcError as exc:
                seen.append(exc.details())
        await srv.reload_files()
    out = capsys.readouterr()
    text = repr(logs) + out.out + out.err + " ".join(seen)
    assert len(seen) == 3  # two unknown keys, then a tenant the key does not cover
    for secret in (key, wrong, "secretsecret", key.rpartition("_")[2]):
        assert secret not in text


async def test_client_sends_its_api_key(keyed):
    """AsyncRouterClient(api_key=...) authenticates every call."""
    srv, _, key = await keyed()
    async with AsyncRouterClient(f"127.0.0.1:{srv.port}", api_key=key, timeout=10) as client:
        assert (await client.route("hi")).backend == "b"
        assert [b.name for b in await client.backends()] == ["b"]
