"""TLS and mTLS for both services, on 127.0.0.1 and ::1, with throwaway certs from `openssl`."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml

from router.api import router_pb2 as pb
from router.api import router_pb2_grpc as pb_grpc
from router.api.server import RouterServer
from router.client import AsyncRouterClient
from router.config import parse_config
from tests.router.api.test_server import ipv6_loopback

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")

SCRIPT = """
set -e
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca
openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=localhost
printf 'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\\n' > san.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem \
    -days 2 -extfile san.ext
openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj /CN=client
openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 2
openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other.pem -days 2 -subj /CN=x
"""


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server cert for 127.0.0.1, ::1 and localhost, a client cert, a stranger's cert."""
    folder = tmp_path_factory.mktemp("certs")
    subprocess.run(["sh", "-c", SCRIPT], cwd=folder, check=True, capture_output=True)
    return folder


def tls_config(certs: Path, *, mtls: bool = False) -> dict[str, Any]:
    tls = {"cert_file": str(certs / "server.pem"), "key_file": str(certs / "server.key")}
    if mtls:
        tls["client_ca_file"] = str(certs / "ca.pem")
    return {
        "server": {"tls": tls, "admin_loopback": True},
        "backends": {"b": {"type": "scripted", "model": "m", "text": "hello over tls"}},
    }


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Any]]:
    """Starts RouterServers on a given host and a free port; stops them after the test."""
    servers: list[RouterServer] = []

    async def start(data: dict[str, Any], host: str = "127.0.0.1") -> RouterServer:
        loaded = parse_config(yaml.safe_dump(data), "<test>")
        servers.append(await RouterServer.start(loaded, host=host, port=0))
        return servers[-1]

    yield start
    for server in servers:
        await server.stop(grace=0)


HOSTS = [
    pytest.param("127.0.0.1", id="ipv4"),
    pytest.param("::1", id="ipv6", marks=ipv6_loopback),
]


def target(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@pytest.mark.parametrize("host", HOSTS)
async def test_tls_serves_both_services_and_refuses_plaintext(serve, certs, host):
    """With server.tls, clients that trust the CA get answers from TokenRouter and RouterAdmin;
    a plaintext client gets nothing."""
    server = await serve(tls_config(certs), host)
    where = target(host, server.port)
    async with AsyncRouterClient(where, ca_file=str(certs / "ca.pem"), timeout=10) as client:
        assert [i async for i in client.generate("hi")][-1].text == "hello over tls"
    creds = grpc.ssl_channel_credentials(root_certificates=(certs / "ca.pem").read_bytes())
    async with grpc.aio.secure_channel(where, creds) as channel:
        info = await pb_grpc.RouterAdminStub(channel).GetConfig(pb.GetConfigRequest(), timeout=10)
        assert info.version == server.router.loaded.version
    async with grpc.aio.insecure_channel(where) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await pb_grpc.TokenRouterStub(channel).ListBackends(pb.ListBackendsRequest(), timeout=3)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize("host", HOSTS)
async def test_mtls_requires_a_client_certificate_from_the_ca(serve, certs, host):
    """With server.tls.client_ca_file, only clients with a certificate signed by it get in."""
    server = await serve(tls_config(certs, mtls=True), host)
    where = target(host, server.port)
    ca = str(certs / "ca.pem")
    for cert, key in ((None, None), ("other.pem", "other.key")):
        options = {"cert_file": str(certs / cert), "key_file": str(certs / key)} if cert else {}
        async with AsyncRouterClient(where, ca_file=ca, timeout=5, **options) as client:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await client.backends()
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    mine = {"cert_file": str(certs / "client.pem"), "key_file": str(certs / "client.key")}
    async with AsyncRouterClient(where, ca_file=ca, timeout=10, **mine) as client:
        assert [b.name for b in await client.backends()] == ["b"]


async def test_cli_connects_with_ca_and_client_certificate(serve, certs):
    """`tokenrouter route --ca-file --cert-file --key-file` reaches an mTLS server."""
    server = await serve(tls_config(certs, mtls=True))
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "router.tools.cli", "route", "hi", "--target"),
        f"127.0.0.1:{server.port}",
        *("--ca-file", str(certs / "ca.pem"), "--cert-file", str(certs / "client.pem")),
        *("--key-file", str(certs / "client.key"), "--timeout", "20"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    assert '"backend": "b"' in out.decode()


async def test_unreadable_tls_files_stop_the_start_naming_the_field(certs, tmp_path):
    """A missing key file is a ConfigError naming server.tls.key_file, before anything binds."""
    from router.core.errors import ConfigError

    data = tls_config(certs)
    data["server"]["tls"]["key_file"] = str(tmp_path / "missing.key")
    loaded = parse_config(yaml.safe_dump(data), "<test>")
    with pytest.raises(ConfigError, match=r"server\.tls\.key_file"):
        await RouterServer.start(loaded, host="127.0.0.1", port=0)
