"""Calibrated replay: the what-if simulator times jobs with trained predictors and reports how
far its times were from the real run the request log recorded."""

from __future__ import annotations

import yaml

from router.config import parse_config
from router.predict.model import Predictors
from router.tools.replay import main, replay
from router.tools.replay_service import ServiceModel
from router.tools.replay_trace import load_request_log
from tests.router.predict.conftest import fleet_config


def test_replay_with_the_trained_service_model(llamacpp_server, request_log, trained) -> None:
    """Replaying the real log with its own fleet: the trained model times the jobs whose
    inputs it saw in training (the rest fall back, counted), and both service models report
    their TTFT and total-time error against the recorded run over all 48 requests; the two
    replays' times differ."""
    requests = load_request_log(request_log)
    assert all(r.ttft_ms and r.total_ms and r.messages == 1 for r in requests)
    loaded = parse_config(yaml.safe_dump(fleet_config(llamacpp_server.base_url)), "<fleet>")
    analytic = replay(loaded, requests)
    service = ServiceModel(Predictors.load(trained[0]))
    learned = replay(loaded, requests, service=service)
    assert learned.service_model == str(trained[0]) and analytic.service_model == "analytic"
    assert 0 <= learned.service_fallbacks < 48
    for metrics in (analytic, learned):
        assert metrics.calibrated_requests == 48
        assert metrics.ttft_error_pct is not None and metrics.ttft_error_pct >= 0
        assert metrics.total_error_pct is not None and metrics.total_error_pct >= 0
    assert learned.ttft_p50_ms != analytic.ttft_p50_ms


def test_replay_command_takes_a_service_model(
    llamacpp_server, request_log, trained, tmp_path, capsys
) -> None:
    """`tokenrouter replay --service-model DIR` prints the error rows and names the model; a
    folder that is not a predictor folder exits 2 saying what is wrong."""
    config = tmp_path / "fleet.yaml"
    config.write_text(yaml.safe_dump(fleet_config(llamacpp_server.base_url)))
    args = ["--trace", str(request_log), "--config", str(config)]
    assert main([*args, "--service-model", str(trained[0])]) == 0
    out = capsys.readouterr().out
    assert f"({trained[0]})" in out and "TTFT error vs the trace (%)" in out
    assert main([*args, "--service-model", str(tmp_path)]) == 2
    assert "card.json" in capsys.readouterr().err
