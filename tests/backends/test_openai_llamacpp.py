"""The OpenAI-compatible backend against a real llama.cpp server (llama-cpp-python's server).

That server sends no usage in streams (it ignores stream_options), has no /health, /slots or
/metrics, and runs one generation at a time (see the `llamacpp_server` fixture).
"""

from __future__ import annotations

import asyncio

from router.core.backend import TextDelta
from tests.backends.test_openai_compat import collect, make_backend, make_request

# Generous: 2 threads on a shared 2-core machine can slow llama.cpp down a lot.
LLAMACPP = {"first_token_s": 120.0, "between_tokens_s": 120.0}


async def test_streams_real_text_from_llamacpp_server(llamacpp_server):
    """Real tokens stream from llama_cpp.server; it sends no usage, so counts are chunks and an
    estimate of the prompt."""
    b = make_backend(llamacpp_server.base_url, timeouts=LLAMACPP)
    request = make_request("Say hello.", max_tokens=8)
    *deltas, finish = await collect(b, request)
    await b.aclose()
    assert deltas and all(isinstance(d, TextDelta) for d in deltas)
    assert "".join(d.text for d in deltas).strip()
    assert finish.prompt_tokens > 0
    assert finish.completion_tokens == sum(d.tokens for d in deltas) <= 8
    assert finish.finish_reason in ("stop", "length")


async def test_concurrent_requests_to_llamacpp_server_all_complete(llamacpp_server):
    """Concurrent streams queue on the server and each completes with its own finish reason."""
    b = make_backend(llamacpp_server.base_url, timeouts=LLAMACPP)
    results = await asyncio.gather(*(collect(b, make_request(max_tokens=6)) for _ in range(2)))
    await b.aclose()
    for *deltas, finish in results:
        assert finish.completion_tokens == sum(d.tokens for d in deltas) > 0
        assert finish.finish_reason in ("stop", "length")


async def test_probe_llamacpp_server(llamacpp_server):
    """probe() with metrics 'llamacpp' succeeds (no /health or /slots there: /v1/models answers)."""
    b = make_backend(llamacpp_server.base_url, metrics="llamacpp")
    load = await b.probe()
    await b.aclose()
    assert load.in_flight == 0 and b.metrics == {}
