"""`tokenrouter serve --workers 2` on shared state in a real Redis: the two workers enforce one
per-minute limit between them, not one each."""

from __future__ import annotations

import asyncio
import signal
import time

from tests.redis_server import start_redis_server
from tests.workers_fleet import fetch, write

CONFIG = """
server: {{watch_config: false, grace_period_s: 5}}
state: {{backend: redis, url: "{url}", prefix: "workers:"}}
backends:
  b: {{type: scripted, model: m, text: "hello"}}
policies:
  rate: {{type: rate-limit, parameters: {{limits: [{{requests_per_minute: 10}}]}}}}
profiles:
  default: {{policies: [{{policy: rate}}]}}
"""


async def test_two_workers_share_one_rate_limit_in_redis(tmp_path, start) -> None:
    """30 chat completions over fresh connections reach both workers, yet exactly 10 (the
    limit for a minute) are served; the rest get 429 naming the limit."""
    if time.time() % 60 > 40:  # not across a minute boundary: the window would reset
        await asyncio.sleep(61 - time.time() % 60)
    with start_redis_server() as redis:
        fleet = await start(write(tmp_path, CONFIG.format(url=redis.url)), "--workers", "2")
        try:
            serving = await fleet.serving()
            body = {"model": "m", "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]}
            answers = [
                await fetch(serving["http_port"], "/v1/chat/completions", body) for _ in range(30)
            ]
        finally:
            fleet.proc.send_signal(signal.SIGTERM)
        assert await fleet.finish() == 0
    statuses = [status for status, _, _ in answers]
    assert {int(h["x-tokenrouter-worker"]) for _, h, _ in answers} == set(serving["workers"])
    assert statuses.count(200) == 10 and statuses.count(429) == 20
    refused = next(text for status, _, text in answers if status == 429)
    assert b"rate limit default: requests per 1m" in refused
