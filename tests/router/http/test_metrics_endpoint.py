"""`GET /metrics` on a real server: the exposition moves as HTTP requests flow, and the admin
token guards it when one is set."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.router.http.conftest import scripted_config


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """Every sample of an exposition by (name, sorted labels)."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(all_samples: dict, name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, ls), v in all_samples.items() if n == name and want <= set(ls))


async def test_a_chat_completion_moves_the_counters_and_histograms(start_http) -> None:
    """One answered chat completion adds one generate request, one TTFT observation, its tokens
    and one 200 answer on the chat_completions route."""
    running = await start_http(scripted_config())
    body = {"model": "auto", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    async with httpx.AsyncClient(base_url=running.base_url, timeout=30) as client:
        before = samples((await client.get("/metrics")).text)
        assert (await client.post("/v1/chat/completions", json=body)).status_code == 200
        response = await client.get("/metrics")
    after = samples(response.text)
    assert response.headers["content-type"].startswith("text/plain")

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("tokenrouter_requests_total", kind="generate", backend="s", status="OK") == 1
    assert moved("tokenrouter_time_to_first_token_seconds_count", backend="s") == 1
    assert moved("tokenrouter_completion_tokens_total", backend="s") == 4
    assert moved("tokenrouter_http_requests_total", route="chat_completions", code="200") == 1


async def test_metrics_needs_the_admin_token_when_one_is_set(start_http, monkeypatch) -> None:
    """With the admin token set, /metrics without it is 401 and with it 200."""
    monkeypatch.setenv("TOKENROUTER_ADMIN_TOKEN", "s3cret")
    running = await start_http(scripted_config())
    async with httpx.AsyncClient(base_url=running.base_url, timeout=30) as client:
        refused = await client.get("/metrics")
        allowed = await client.get("/metrics", headers={"authorization": "Bearer s3cret"})
    assert refused.status_code == 401 and "admin token" in refused.text
    assert allowed.status_code == 200 and "tokenrouter_requests_total" in allowed.text
