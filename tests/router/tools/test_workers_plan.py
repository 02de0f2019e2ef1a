"""The supervisor's plan for `serve --workers N`: worker count, ports fixed first, refusals."""

from __future__ import annotations

import os
import socket

import pytest
from structlog.testing import capture_logs

from router.config import parse_config
from router.core.errors import ConfigError
from router.tools.workers import parse_workers, plan

SCRIPTED = "backends:\n  b: {type: scripted, model: m}\n"


def _option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_auto_is_one_worker_per_core_and_counts_are_bounded():
    """`auto` is os.cpu_count(); a count must be 1 to 256."""
    assert parse_workers("auto") == (os.cpu_count() or 1) and parse_workers("3") == 3
    for bad in ("0", "257", "-1", "2.5", "9" * 40):
        with pytest.raises(ValueError, match="--workers"):
            parse_workers(bad)


def test_port_0_becomes_one_free_port_every_worker_is_given():
    """Ports of 0 are replaced by free ports, passed explicitly with the other options."""
    loaded = parse_config(SCRIPTED, "r.yaml")
    p = plan(loaded, 2, config="r.yaml", port=0, http_port=0, insecure=True, log_json=True)
    port, http_port = int(_option(p.command, "--port")), int(_option(p.command, "--http-port"))
    assert port > 0 and http_port > 0 and port != http_port
    assert p.summary == {"host": "127.0.0.1", "port": port, "http_port": http_port}
    assert (
        _option(p.command, "--config") == "r.yaml" and _option(p.command, "--host") == "127.0.0.1"
    )
    assert {"--insecure", "--log-json"} <= set(p.command) and p.count == 2
    with socket.socket() as s:  # the reservation was let go of: the workers can bind it
        s.bind(("127.0.0.1", port))


def test_http_off_stays_off_and_the_configured_port_is_kept():
    """Without an HTTP port the workers get none; a configured gRPC port is passed as is."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    loaded = parse_config(f"server: {{port: {free}, grace_period_s: 3}}\n" + SCRIPTED, "<t>")
    p = plan(loaded, 2)
    assert "--http-port" not in p.command and int(_option(p.command, "--port")) == free
    assert "--config" not in p.command and p.grace_s == 3


def test_a_unix_socket_or_a_held_port_is_refused_naming_the_setting():
    """A Unix socket cannot be shared; a port something else holds is a ConfigError naming it."""
    loaded = parse_config(SCRIPTED, "<t>")
    with pytest.raises(ConfigError, match=r"server\.host: --workers needs a TCP address"):
        plan(loaded, 2, host="unix:/tmp/tr.sock")
    with socket.socket() as held:
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # even a shareable one
        held.bind(("127.0.0.1", 0))
        held.listen()
        with pytest.raises(ConfigError, match=r"server\.port: cannot bind 127\.0\.0\.1:"):
            plan(loaded, 2, port=held.getsockname()[1])


def test_explicit_threads_beyond_the_cores_are_warned_about():
    """A backend whose threads times the workers exceed the cores is named in a warning."""
    cores = os.cpu_count() or 1
    loaded = parse_config(
        f"backends:\n  edge: {{type: llamacpp, model: m, gguf: x.gguf, threads: {cores}}}\n",
        "<t>",
    )
    with capture_logs() as logs:
        plan(loaded, 2, port=0)
        plan(loaded, 1, port=0)
    warned = [x for x in logs if x["event"].startswith("backend threads oversubscribe")]
    assert len(warned) == 1 and warned[0]["backend"] == "edge" and warned[0]["workers"] == 2


async def test_the_kill_deadline_follows_a_reloaded_grace_period(tmp_path):
    """At shutdown the grace period is re-read from the config file: a longer one a reload
    brought is waited for; an unreadable file or a shorter one keeps the start-up value."""
    path = tmp_path / "router.yaml"
    path.write_text("server: {grace_period_s: 3}\n" + SCRIPTED)
    p = plan(parse_config(path.read_text(), str(path)), 2, config=str(path), port=0)
    path.write_text("server: {grace_period_s: 7}\n" + SCRIPTED)
    assert await p.current_grace_s() == 7
    path.write_text("server: {grace_period_s: 1}\n" + SCRIPTED)
    assert await p.current_grace_s() == 3
    path.write_text("server: {grace_period_s: -1}\n" + SCRIPTED)
    assert await p.current_grace_s() == 3


def test_an_exposed_address_is_refused_before_any_worker_starts(monkeypatch):
    """A non-loopback host without an admin token is refused by the plan, as `serve` would."""
    from router.api.server import UnsafeExposure

    monkeypatch.delenv("TOKENROUTER_ADMIN_TOKEN", raising=False)
    with pytest.raises(UnsafeExposure, match="TOKENROUTER_ADMIN_TOKEN"):
        plan(parse_config(SCRIPTED, "<t>"), 2, host="0.0.0.0", port=0)
