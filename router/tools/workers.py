"""`tokenrouter serve --workers N`: a supervisor keeping N router processes on shared ports.

Each worker is an ordinary `tokenrouter serve` on the same host, gRPC port and HTTP port, bound
with SO_REUSEPORT so the kernel spreads new connections over them; each owns its backends,
budgets, token windows, capacity counts and health (docs/operators.md, "Workers"). The
supervisor does no request work. It checks the config and the ports first (a port of 0 becomes
a free port, passed to every worker), starts the workers with one end of a socket pair each
(router/tools/worker_link.py), and logs `serving` with their pids once every one wrote `ready`.

- A worker that fails at start-up stops the whole thing with its exit code (a bad config, a
  port in use: 2), and its own message on the shared stderr; no restart loop.
- A worker that dies later is restarted, after a backoff that doubles while restarts die young
  (0.5 s up to 30 s), each death logged with its exit code.
- SIGTERM or SIGINT: every worker gets SIGTERM and drains within `server.grace_period_s`; one
  still running `KILL_MARGIN_S` later is killed. The supervisor then exits 0 (1 if a worker had
  to be killed or failed its drain).
- SIGHUP goes to every serving worker, which re-reads its config and keys files; a worker still
  starting reads the current files anyway (and could die of an early SIGHUP, so it gets none).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass, field

import structlog

from router.api.addresses import is_unix
from router.api.server import check_exposure
from router.config import LoadedConfig, load_config
from router.core.errors import ConfigError
from router.core.workers import WORKERS_ENV
from router.tools.worker_link import READY

KILL_MARGIN_S = 5.0
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 30.0
STABLE_S = 30.0  # a worker that lived this long resets the backoff
# exit codes of a worker told to stop: drained (0), or stopped by the signal (or Ctrl-C's
# KeyboardInterrupt) while still starting, before it handles them
DRAINED = (0, -signal.SIGTERM, -signal.SIGINT, 130)
log = structlog.get_logger("tokenrouter")


def parse_workers(text: str) -> int:
    """`auto` (one per core) or a positive count, at most 256."""
    if text == "auto":
        return os.cpu_count() or 1
    if not text.isdigit() or not 1 <= int(text[:4]) <= 256:
        raise ValueError("--workers: expected auto or a count from 1 to 256")
    return int(text)


def reserve_port(host: str, port: int, setting: str) -> socket.socket:
    """Binds `host:port` without SO_REUSEPORT: fails when anything, another fleet included,
    holds the port; port 0 picks a free one. The caller closes it before the workers bind."""
    host = host.strip().removeprefix("[").removesuffix("]")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        raise ConfigError(
            "<server>", setting, f"cannot bind {host}:{port}: {exc.strerror or exc}"
        ) from None
    return sock


@dataclass
class Plan:
    """What every worker runs: its command line (without the link) and the supervisor's view."""

    command: list[str]
    count: int
    grace_s: float
    summary: dict[str, object] = field(default_factory=dict)
    config: str | None = None  # the config file, re-read for its grace period at shutdown

    async def current_grace_s(self) -> float:
        """`server.grace_period_s` as the workers now run it: the file's when it still loads
        (a reload may have changed it), else the one at start-up; never less than that."""
        if self.config is None:
            return self.grace_s
        try:
            loaded = await asyncio.to_thread(load_config, self.config)
        except ConfigError:
            return self.grace_s
        return max(self.grace_s, loaded.config.server.grace_period_s)


def plan(
    loaded: LoadedConfig,
    count: int,
    *,
    config: str | None = None,
    host: str | None = None,
    port: int | None = None,
    http_port: int | None = None,
    insecure: bool = False,
    log_level: str = "info",
    log_json: bool | None = None,
) -> Plan:
    """The workers' `serve` command line, its ports fixed (the options as `serve` takes them);
    raises ConfigError for a Unix host or a port in use, UnsafeExposure as `serve` would."""
    cfg = loaded.config.server
    host = host or cfg.host
    if is_unix(host):
        raise ConfigError("<server>", "server.host", "--workers needs a TCP address to share")
    http_port = cfg.http_port if http_port is None else http_port
    check_exposure(host, cfg, insecure)  # before any worker: they would each refuse
    if http_port is not None:
        check_exposure(cfg.http_host or host, cfg, insecure)
    held = [reserve_port(host, cfg.port if port is None else port, "server.port")]
    try:
        if http_port is not None:
            held.append(reserve_port(cfg.http_host or host, http_port, "server.http_port"))
        ports = [s.getsockname()[1] for s in held]
    finally:
        for sock in held:
            sock.close()
    command = [sys.executable, "-m", "router.tools.cli", "serve", "--host", host]
    command += ["--port", str(ports[0]), "--log-level", log_level]
    if http_port is not None:
        command += ["--http-port", str(ports[1])]
    if config:
        command += ["--config", config]
    if insecure:
        command.append("--insecure")
    if log_json is not None:
        command.append("--log-json" if log_json else "--no-log-json")
    summary = {"host": host, "port": ports[0], "http_port": ports[1] if len(ports) > 1 else None}
    _warn_oversubscribed(loaded, count)
    return Plan(command, count, cfg.grace_period_s, summary, config)


def _warn_oversubscribed(loaded: LoadedConfig, count: int) -> None:
    cores = os.cpu_count() or 1
    for name, backend in loaded.config.backends.items():
        threads = getattr(backend, "threads", None)
        if threads and threads * count > cores:
            log.warning(
                "backend threads oversubscribe the cores with these workers",
                backend=name,
                threads=threads,
                workers=count,
                cores=cores,
            )


@dataclass
class Worker:
    """One running worker process and its end of the link."""

    proc: asyncio.subprocess.Process
    link: socket.socket
    started: float
    ready: bool = False


class Supervisor:
    """Starts the workers of a Plan, keeps them running, forwards signals."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.workers: list[Worker] = []
        self.stopping = asyncio.Event()

    async def _spawn(self) -> Worker:
        ours, theirs = socket.socketpair()
        env = {**os.environ, WORKERS_ENV: str(self.plan.count)}
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.plan.command,
                "--worker-link",
                str(theirs.fileno()),
                pass_fds=(theirs.fileno(),),
                env=env,
            )
        finally:
            theirs.close()
        ours.setblocking(False)
        return Worker(proc, ours, time.monotonic())

    async def _await_ready(self, worker: Worker) -> bool:
        """True once the worker wrote `ready`; False when it exited first (its link closed)."""
        loop = asyncio.get_running_loop()
        got = b""
        with contextlib.suppress(OSError):
            while len(got) < len(READY) and (chunk := await loop.sock_recv(worker.link, 16)):
                got += chunk
        worker.ready = got.startswith(READY)
        return worker.ready

    async def run(self) -> int:
        """Runs until a signal stops it; returns the exit code."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        loop.add_signal_handler(signal.SIGHUP, self._forward_hup)
        self.workers = [await self._spawn() for _ in range(self.plan.count)]
        failed = await self._all_ready()
        if failed is not None:
            code = await failed.proc.wait()
            log.error(
                "a worker failed at start-up; stopping", worker=failed.proc.pid, exit_code=code
            )
            await self._shutdown()
            return code if code > 0 else 1
        if not self.stopping.is_set():
            log.info("serving", workers=[w.proc.pid for w in self.workers], **self.plan.summary)
            keepers = [asyncio.create_task(self._keep(i)) for i in range(self.plan.count)]
            await self.stopping.wait()
            for task in keepers:
                task.cancel()
        return await self._shutdown()

    async def _all_ready(self) -> Worker | None:
        """Waits until every worker is ready or a stop signal came (None), or one worker exits
        first: that one, at once, without waiting for the others."""
        pending = {asyncio.ensure_future(self._await_ready(w)): w for w in self.workers}
        stop = asyncio.ensure_future(self.stopping.wait())
        try:
            while pending and not stop.done():
                done, _ = await asyncio.wait([*pending, stop], return_when=asyncio.FIRST_COMPLETED)
                for task in done & pending.keys():
                    if not task.result():
                        return pending[task]
                    del pending[task]
            return None
        finally:
            for task in [*pending, stop]:
                task.cancel()

    def _forward_hup(self) -> None:
        pids = [w.proc.pid for w in self.workers if w.ready and w.proc.returncode is None]
        log.info("reloading the workers", workers=pids)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGHUP)

    async def _keep(self, slot: int) -> None:
        """Restarts the worker in `slot` whenever it exits, with a backoff."""
        failures = 0
        while True:
            worker = self.workers[slot]
            code = await worker.proc.wait()
            if self.stopping.is_set():  # told to stop with the rest (systemd, Ctrl-C): no restart
                return
            lived = time.monotonic() - worker.started
            failures = failures + 1 if lived < STABLE_S else 1
            delay = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** min(failures - 1, 16))
            log.error(
                "a worker exited; restarting it",
                worker=worker.proc.pid,
                exit_code=code,
                ready=worker.ready,
                restart_in_s=delay,
            )
            worker.link.close()
            await asyncio.sleep(delay)
            self.workers[slot] = await self._spawn()
            if await self._await_ready(self.workers[slot]):
                log.info(
                    "worker restarted", worker=self.workers[slot].proc.pid, previous=worker.proc.pid
                )

    async def _shutdown(self) -> int:
        """SIGTERM to every worker, SIGKILL to those left after grace + margin; the exit code."""
        running = [w for w in self.workers if w.proc.returncode is None]
        log.info("stopping the workers", workers=[w.proc.pid for w in running])
        for worker in running:
            with contextlib.suppress(ProcessLookupError):
                worker.proc.send_signal(signal.SIGTERM)
        waits = [asyncio.ensure_future(w.proc.wait()) for w in running]
        if waits:
            grace = await self.plan.current_grace_s()
            await asyncio.wait(waits, timeout=grace + KILL_MARGIN_S)
        code = 0
        for worker in running:
            if worker.proc.returncode is None:
                log.error("a worker did not drain in time; killing it", worker=worker.proc.pid)
                with contextlib.suppress(ProcessLookupError):
                    worker.proc.kill()
                await worker.proc.wait()
                code = 1
            elif worker.proc.returncode not in DRAINED:
                log.error(
                    "a worker failed its drain",
                    worker=worker.proc.pid,
                    exit_code=worker.proc.returncode,
                )
                code = 1
            worker.link.close()
        log.info("stopped", exit_code=code)
        return code


async def supervise(plan: Plan) -> int:
    """Supervises the workers of `plan` until a signal stops them; returns the exit code."""
    return await Supervisor(plan).run()
