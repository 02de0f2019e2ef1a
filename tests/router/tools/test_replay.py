"""The what-if replay simulator: trace loading, the simulation model, the report and the CLI."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from router.config import LoadedConfig, load_config, parse_config
from router.core.types import Privacy
from router.tools.replay import main, replay
from router.tools.replay_trace import (
    TraceError,
    TraceRequest,
    assign,
    load_trace,
    load_traces,
    parse_privacy_ratios,
    parse_slo_ratios,
)

DATA = Path(__file__).parents[1] / "data"
_ROOT = Path(__file__).resolve().parents[3]
TRACES = next(
    (p for p in (_ROOT / "shared/data/traces", _ROOT.parent / "shared/data/traces") if p.is_dir()),
    _ROOT / "shared/data/traces",
)
MIX = "PUBLIC=0.6,INTERNAL=0.2,CONFIDENTIAL=0.15,RESTRICTED=0.05"


def config(backends: dict[str, Any], policies: list[Any], **extra: Any) -> LoadedConfig:
    """A config with these backends and one default profile using `policies` (dicts or names)."""
    specs = {}
    for p in policies:
        spec = p if isinstance(p, dict) else {"type": p}
        specs[spec.get("name", spec["type"])] = {k: v for k, v in spec.items() if k != "name"}
    data = {
        "backends": backends,
        "policies": specs,
        "profiles": {"default": {"policies": [{"policy": n} for n in specs]}},
        **extra,
    }
    return parse_config(yaml.safe_dump(data), "<test>")


def scripted(**fields: Any) -> dict[str, Any]:
    return {"type": "scripted", "model": "m", **fields}


def perf(prefill: float, decode: float, rtt: float = 0.0) -> dict[str, float]:
    return {"prefill_tokens_per_s": prefill, "decode_tokens_per_s": decode, "rtt_ms": rtt}


def synthetic(n: int) -> list[TraceRequest]:
    """n requests, 50 ms apart, with varied sizes (no privacy or SLO recorded)."""
    return [TraceRequest(k * 0.05, 100 + (k * 37) % 900, 20 + (k * 11) % 200) for k in range(n)]


def test_hand_computed_trace() -> None:
    """Costs, TTFT percentiles, SLO attainment and shares match a trace computed by hand."""
    loaded = config(
        {
            # $10 / $20 per Mtok, 1000 tok/s prefill, 100 tok/s decode, 10 ms rtt, one slot
            "cheap": scripted(
                price={"input_per_mtok": 10, "output_per_mtok": 20},
                performance=perf(1000, 100, 10),
                max_concurrency=1,
            ),
            # $100 / $200 per Mtok + $0.001 a request, 2000 / 200 tok/s, no rtt, unlimited
            "dear": scripted(
                price={"input_per_mtok": 100, "output_per_mtok": 200, "per_request": 0.001},
                performance=perf(2000, 200),
            ),
        },
        ["capacity", "cost"],
    )
    trace = [
        # t=0: cheap (lowest cost). TTFT 100/1000 s + 10 ms = 110 ms; done 0.11 + 0.5 = 0.61 s.
        #      cost 100*10e-6 + 50*20e-6 = 0.002
        TraceRequest(0.0, 100, 50),
        # t=0.2: cheap's one slot is busy -> dear. TTFT 200/2000 s = 100 ms (SLO 50: missed).
        #      cost 200*100e-6 + 100*200e-6 + 0.001 = 0.041
        TraceRequest(0.2, 200, 100, latency_slo_ms=50),
        # t=1.0: cheap is free again. TTFT 300 + 10 = 310 ms (SLO 400: met); done 1.41 s.
        #      cost 300*10e-6 + 10*20e-6 = 0.0032
        TraceRequest(1.0, 300, 10, latency_slo_ms=400),
        # t=1.2: cheap busy until 1.41 -> dear. TTFT 1000/2000 s = 500 ms (SLO 2000: met);
        #      done 1.7 + 100/200 = 2.2 s. cost 1000*100e-6 + 100*200e-6 + 0.001 = 0.121
        TraceRequest(1.2, 1000, 100, latency_slo_ms=2000),
    ]
    m = replay(loaded, trace)
    assert (m.requests, m.served, m.rejected) == (4, 4, 0)
    assert m.total_cost_usd == pytest.approx(0.002 + 0.041 + 0.0032 + 0.121)
    assert m.cost_per_1k_requests_usd == pytest.approx(0.1672 / 4 * 1000)
    # TTFTs sorted: 100, 110, 310, 500 (linear interpolation between ranks)
    assert m.ttft_p50_ms == pytest.approx(210.0)  # rank 1.5
    assert m.ttft_p95_ms == pytest.approx(310 + 0.85 * 190)  # rank 2.85
    assert m.ttft_p99_ms == pytest.approx(310 + 0.97 * 190)  # rank 2.97
    assert (m.slo_requests, m.slo_met) == (3, 2)
    assert m.slo_attainment == pytest.approx(2 / 3)
    assert m.backend_requests == {"cheap": 2, "dear": 2}
    assert m.backend_share == {"cheap": 0.5, "dear": 0.5}
    assert m.simulated_s == pytest.approx(2.2)
    assert m.privacy_violations == 0


def test_queueing_when_slots_are_full() -> None:
    """With one replica, later requests wait in FIFO order and their TTFT includes the wait."""
    edge = {
        "type": "llamacpp",
        "model": "m",
        "gguf": "unused.gguf",
        "replicas": 1,
        "max_queue": 2,
        "performance": perf(1000, 100),
    }
    # each request: prefill 100 tokens = 100 ms, decode 10 tokens = 100 ms
    trace = [TraceRequest(t, 100, 10) for t in (0.0, 0.01, 0.02, 0.03)]
    m = replay(config({"edge": edge}, ["capacity"]), trace)
    # r0 starts at 0 (TTFT 100, done 0.2); r1 waits 0.01->0.2 (TTFT 290, done 0.4);
    # r2 waits 0.02->0.4 (TTFT 480, done 0.6); r3 finds 1 running + 2 queued = the limit of 3.
    assert (m.served, m.rejected_by_code) == (3, {"RESOURCE_EXHAUSTED": 1})
    assert (m.ttft_p50_ms, m.ttft_p99_ms) == pytest.approx((290.0, 290 + 0.98 * 190))
    assert m.simulated_s == pytest.approx(0.6)


def test_budget_exhaustion_rejects_and_follows_simulated_time() -> None:
    """A spent budget rejects requests (RESOURCE_EXHAUSTED) until its window rolls over in
    simulated time, so the budget policy runs on the simulated clock."""
    budget = {
        "type": "budget",
        "parameters": {"budgets": [{"tenant": "*", "limit_usd": 0.01, "window": "10s"}]},
    }
    loaded = config({"b": scripted(price={"per_request": 0.004})}, [budget])
    # $0.004 each: two fit in $0.01, the next three do not; the window [10, 20) s is fresh.
    trace = [TraceRequest(t, 10, 5) for t in (0, 1, 2, 3, 4, 12, 13)]
    m = replay(loaded, trace)
    assert m.served == 4
    assert m.rejected_by_code == {"RESOURCE_EXHAUSTED": 3}
    assert m.total_cost_usd == pytest.approx(0.016)


def test_a_refusing_backend_falls_back_to_another() -> None:
    """Without a capacity policy a full backend refuses, and the request is placed again without
    it (as the live router's fallback does), or rejected when no attempt is left."""
    backends = {
        "small": scripted(max_concurrency=1, performance=perf(1000, 10)),
        "big": scripted(price={"per_request": 0.01}),
    }
    trace = [TraceRequest(0.0, 10, 100), TraceRequest(0.01, 10, 100)]  # the first runs 10 s
    m = replay(config(backends, ["cost"]), trace)
    assert (m.backend_requests, m.rejected) == ({"small": 1, "big": 1}, 0)
    m = replay(config(backends, ["cost"], fallback={"max_attempts": 1}), trace)
    assert (m.backend_requests["big"], m.rejected_by_code) == (0, {"RESOURCE_EXHAUSTED": 1})


def test_batch_window_places_arrivals_jointly() -> None:
    """Arrivals within the batch window are solved as one batch (min-cost flow over the slots),
    and their TTFT includes the wait for the window."""
    backends = {
        "small": scripted(max_concurrency=2, performance=perf(1000, 100)),
        "big": scripted(price={"per_request": 0.01}, performance=perf(1000, 100)),
    }
    trace = [TraceRequest(k * 0.01, 100, 10) for k in range(5)]  # all within 100 ms
    m = replay(config(backends, ["capacity", "cost"]), trace, batch_window_ms=100)
    assert (m.batches, m.solver_tiers) == (1, {"min-cost-flow": 1})
    assert m.backend_requests == {"small": 2, "big": 3}
    # placed at t = 0.1: TTFT = (0.1 - arrival) + 100 ms prefill = 200, 190, 180, 170, 160 ms
    assert (m.ttft_p50_ms, m.ttft_p99_ms) == pytest.approx((180.0, 190 + 0.96 * 10))


def _privacy_fleet(profile: list[str]) -> LoadedConfig:
    return config(
        {
            "api": {"type": "anthropic", "model": "m", "performance": perf(20000, 100)},
            "gpu": scripted(trust="self_hosted", price={"per_request": 0.01}),
        },
        profile,
    )


def test_restricted_never_lands_on_third_party() -> None:
    """RESTRICTED requests avoid the free third-party API (no violation); PUBLIC ones use it."""
    trace = synthetic(400)
    ratios = {Privacy.PUBLIC: 0.5, Privacy.RESTRICTED: 0.5}
    restricted = sum(r.privacy == Privacy.RESTRICTED for r in assign(trace, seed=3, privacy=ratios))
    m = replay(_privacy_fleet(["privacy", "cost"]), trace, 3, privacy=ratios)
    assert m.privacy_violations == 0
    assert m.backend_requests == {"api": 400 - restricted, "gpu": restricted}
    assert 0 < restricted < 400


def test_privacy_violations_are_counted_without_the_privacy_policy() -> None:
    """Without the privacy policy in the profile, CONFIDENTIAL requests on the third-party API
    count as violations, while the always-on guard still keeps RESTRICTED ones off it."""
    trace = synthetic(300)
    ratios = parse_privacy_ratios("PUBLIC=0.4,CONFIDENTIAL=0.3,RESTRICTED=0.3")
    drawn = [r.privacy for r in assign(trace, seed=5, privacy=ratios)]
    m = replay(_privacy_fleet(["cost"]), trace, 5, privacy=ratios)
    assert m.privacy_violations == drawn.count(Privacy.CONFIDENTIAL) > 0
    assert m.backend_requests["gpu"] == drawn.count(Privacy.RESTRICTED)


def test_deterministic_for_a_seed() -> None:
    """The same seed gives identical metrics; another seed draws other classes and SLOs."""
    loaded = load_config(DATA / "replay_a.yaml")
    trace = synthetic(300)
    ratios, slo = parse_privacy_ratios(MIX), parse_slo_ratios("500:0.5")
    first = replay(loaded, trace, 1, privacy=ratios, slo=slo)
    assert replay(loaded, trace, 1, privacy=ratios, slo=slo) == first
    assert assign(trace, seed=1, privacy=ratios) != assign(trace, seed=2, privacy=ratios)
    assert replay(loaded, trace, 2, privacy=ratios, slo=slo) != first


def test_both_trace_formats_load() -> None:
    """The Azure CSV and the JSONL request log load, rebased to t = 0 and shaped as asked."""
    azure = load_traces([DATA / "azure_tiny.csv"])
    assert [(r.prompt_tokens, r.completion_tokens) for r in azure][:2] == [(374, 44), (396, 109)]
    assert azure[0].ts == 0.0 and azure[1].ts == pytest.approx(4.314579)
    assert azure[0].privacy is None and azure[0].latency_slo_ms is None
    log = load_trace(DATA / "requests.jsonl")
    assert len(log) == 4
    assert (log[1].privacy, log[1].tenant, log[1].max_tokens) == (Privacy.RESTRICTED, "acme", 128)
    assert (log[0].latency_slo_ms, log[3].privacy, log[3].max_tokens) == (500, None, 0)
    assert log[2].completion_tokens == 64  # failed, generated nothing: replays with max_tokens
    shaped = load_traces([DATA / "requests.jsonl"], limit=3, speedup=2, max_tokens=50)
    assert [r.ts for r in shaped] == [0.0, 0.25, 0.375]
    assert [(r.max_tokens, r.completion_tokens) for r in shaped] == [(50, 40), (50, 50), (50, 50)]
    merged = load_traces([DATA / "azure_tiny.csv", DATA / "azure_tiny.csv"])
    assert len(merged) == 10 and merged[1].ts == 0.0


def test_ratio_options_are_validated() -> None:
    """Ratio options parse, fill only missing fields, and shares over 1 or bad names are errors."""
    assert parse_slo_ratios("500:0.5,2000:0.25") == [(500, 0.5), (2000, 0.25)]
    with pytest.raises(TraceError, match="more than 1"):
        parse_privacy_ratios("PUBLIC=0.7,RESTRICTED=0.4")
    with pytest.raises(TraceError, match="unknown privacy class"):
        parse_privacy_ratios("SECRET=0.1")
    recorded = TraceRequest(0.0, 1, 1, privacy=Privacy.PUBLIC, latency_slo_ms=0)
    assert assign([recorded], privacy={Privacy.RESTRICTED: 1.0}, slo=[(10, 1.0)]) == [recorded]


def test_cli_compare_prints_both_configs_and_differences(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--compare` prints A, B and B - A, writes the JSON metrics, and exits 0."""
    out = tmp_path / "metrics.json"
    argv = ["--trace", str(DATA / "requests.jsonl"), "--trace", str(DATA / "azure_tiny.csv")]
    argv += ["--config", str(DATA / "replay_a.yaml"), "--compare", str(DATA / "replay_b.yaml")]
    argv += ["--privacy", MIX, "--slo-ms", "500:0.5", "--seed", "7", "--json", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "A: " in text and "B: " in text and "B - A" in text
    assert "TTFT p95 (ms)" in text and "share gpu" in text
    data = json.loads(out.read_text())
    assert data["A"]["requests"] == data["B"]["requests"] == 9
    assert data["difference"]["served"] == data["B"]["served"] - data["A"]["served"]
    assert data["A"]["privacy_violations"] == data["B"]["privacy_violations"] == 0


def test_cli_reports_a_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A missing config file is reported on stderr with exit code 2, not a traceback."""
    argv = ["--trace", str(DATA / "azure_tiny.csv"), "--config", str(tmp_path / "nope.yaml")]
    assert main(argv) == 2
    assert "cannot read file" in capsys.readouterr().err


def test_azure_conversation_trace_20k() -> None:
    """20,000 real Azure requests (the conversation trace, then the code trace) replay through
    the full pipeline well within a minute, with no privacy violation."""
    paths = [TRACES / "azure_llm_2023_conv.csv", TRACES / "azure_llm_2023_code.csv"]
    if not all(p.is_file() for p in paths):
        pytest.skip(f"the Azure traces are not in {TRACES}")
    requests = load_traces(paths, limit=20_000)
    started = time.perf_counter()
    m = replay(
        load_config(DATA / "replay_a.yaml"),
        requests,
        privacy=parse_privacy_ratios(MIX),
        slo=parse_slo_ratios("500:0.5"),
    )
    assert m.requests == m.served + m.rejected == 20_000
    assert m.privacy_violations == 0
    assert time.perf_counter() - started < 60
