"""The OpenAI-compatible backend's load probe against FakeUpstream: metrics read, fallbacks to
what the server offers, dead servers and bounded answers."""

from __future__ import annotations

import pytest

from backends.http_stream import MAX_PROBE_BYTES
from router.core.errors import BackendUnavailable
from tests.backends.test_openai_compat import make_backend


async def test_probe_reads_vllm_metrics(upstream):
    """probe() with metrics 'vllm' reads waiting/running/KV-cache gauges into Load and metrics."""
    b = make_backend(upstream.base_url, metrics="vllm")
    upstream.waiting, upstream.running, upstream.kv_cache = 3, 2, 0.25
    load = await b.probe()
    assert load.queued == 3 and b.load().queued == 3
    assert b.metrics == {"waiting": 3.0, "running": 2.0, "kv_cache_usage": 0.25}
    assert upstream.requests[-1].path == "/metrics"
    await b.aclose()


@pytest.mark.parametrize("metrics", ["vllm", "auto", "none", "llamacpp"])
async def test_probe_fails_on_a_dead_server(upstream, metrics):
    """probe() raises BackendUnavailable when the server refuses connections."""
    b = make_backend(upstream.base_url, metrics=metrics)
    await upstream.refuse()
    with pytest.raises(BackendUnavailable, match="connection refused"):
        await b.probe()
    await b.aclose()


@pytest.mark.parametrize(
    ("metrics", "paths"),
    [
        ("none", ["/v1/models"]),
        ("auto", ["/metrics", "/v1/models"]),
        ("llamacpp", ["/health", "/slots"]),
    ],
)
async def test_probe_falls_back_to_what_the_server_offers(upstream, metrics, paths):
    """Without /metrics, 'auto' lists models; 'llamacpp' reads /health and tolerates no /slots."""
    upstream.serve_metrics = False
    b = make_backend(upstream.base_url, metrics=metrics)
    await b.probe()
    await b.aclose()
    assert [r.path for r in upstream.requests] == paths and b.metrics == {}


async def test_probe_vllm_without_metrics_fails(upstream):
    """probe() with metrics 'vllm' fails when the server has no /metrics."""
    upstream.serve_metrics = False
    b = make_backend(upstream.base_url, metrics="vllm")
    with pytest.raises(BackendUnavailable, match="no vLLM metrics"):
        await b.probe()
    await b.aclose()


async def test_probe_reads_a_bounded_answer(upstream):
    """A metrics page up to the limit is read; a larger one fails the probe, naming the backend."""
    b = make_backend(upstream.base_url, metrics="vllm")
    upstream.running, upstream.metrics_padding = 2, 1 << 20
    await b.probe()
    assert b.metrics["running"] == 2.0
    upstream.metrics_padding = MAX_PROBE_BYTES + 4096
    with pytest.raises(BackendUnavailable) as err:
        await b.probe()
    assert err.value.backend == "gpu" and f"is larger than {MAX_PROBE_BYTES} bytes" in str(
        err.value
    )
    await b.aclose()
