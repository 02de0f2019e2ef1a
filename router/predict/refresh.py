"""Online refresh: every `predictors.refresh_minutes`, retrain from the live request log in a
separate process (`tokenrouter train --if-better`), which replaces the predictors folder only if
the new models predict TTFT better on the latest held-out rows than the current ones. A
replaced folder's new card.json reloads the config through the file watch (router/api/server.py).

Training never runs in the router's process: the event loop only waits on the child. A refresh
that fails is logged and the next one tries again; a reload that turns the refresh off or on is
followed at the next turn.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable

import structlog

from router.config import Config

log = structlog.get_logger("tokenrouter")

IDLE_S = 30.0  # how often a router with the refresh off looks at its config again
TIMEOUT_S = 600.0  # one training run, at most


async def refresh_once(config: Config) -> int:
    """Runs one `tokenrouter train --if-better` on the config's request log and folder; its exit
    code (-1 when it ran out of time and was killed)."""
    assert config.predictors.path and config.server.request_log
    command = [sys.executable, "-m", "router.tools.cli", "train", "--if-better"]
    command += ["--log", config.server.request_log, "--out", config.predictors.path]
    child = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        out, _ = await asyncio.wait_for(child.communicate(), TIMEOUT_S)
    except TimeoutError:
        child.kill()
        await child.wait()
        log.warning("predictor refresh timed out", timeout_s=TIMEOUT_S)
        return -1
    text = out.decode(errors="replace").strip()
    first = text.splitlines()[0] if text else ""
    if child.returncode == 0:
        log.info("predictor refresh", outcome=first, folder=config.predictors.path)
    else:
        log.warning("predictor refresh failed", code=child.returncode, output=text[-500:])
    return child.returncode or 0


async def refresh_forever(current: Callable[[], Config]) -> None:
    """Refreshes on the interval the current config sets (none while it is 0); until cancelled."""
    while True:
        minutes = current().predictors.refresh_minutes
        if not minutes:
            await asyncio.sleep(IDLE_S)
            continue
        await asyncio.sleep(minutes * 60)
        config = current()
        predictors = config.predictors
        if predictors.refresh_minutes and predictors.path and config.server.request_log:
            await refresh_once(config)
