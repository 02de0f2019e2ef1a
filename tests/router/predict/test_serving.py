"""A real router serving learned predictors: they decide the estimates the policies and the
explain table see, the analytic estimate stands in where they cannot judge, a broken folder is a
config error that leaves the running config in force, and a retrained folder is picked up."""

from __future__ import annotations

import asyncio
import json
import shutil

import pytest
import yaml

from router.api import router_pb2 as pb
from router.api.convert import request_from_pb
from router.api.server import RouterServer
from router.config import load_config
from router.config.validate import validate_text
from router.core.errors import ConfigError
from router.tools.explain import format_decision
from tests.router.predict.conftest import fleet_config

LATENCY = {
    "policies": {"capability": {"type": "capability"}, "latency": {"type": "latency"}},
    "profiles": {"default": {"policies": [{"policy": "capability"}, {"policy": "latency"}]}},
}


def _config(gpu_url: str, folder) -> dict:
    return fleet_config(gpu_url, predictors={"path": str(folder)}, **LATENCY)


def _ask(words: int, **fields) -> pb.GenerateRequest:
    text = " ".join(["fox"] * words)
    return pb.GenerateRequest(
        messages=[pb.Message(role="user", content=text)], max_tokens=8, **fields
    )


async def test_the_model_decides_the_estimates(start_server, llamacpp_server, trained) -> None:
    """With predictors configured, every candidate's TTFT, total time and cost come from the
    model, the latency policy scores that TTFT, and the explain table says `model`."""
    folder, _ = trained
    srv = await start_server(_config(llamacpp_server.base_url, folder))
    decision = await srv.stub.Route(_ask(20))
    predictors = srv.server.router.pipeline.predictors
    for c in decision.candidates:
        assert c.estimator == "model"
        assert c.estimated_total_ms > c.estimated_ttft_ms > 0
        assert c.scores["latency"] == pytest.approx(500 / (500 + c.estimated_ttft_ms), rel=1e-6)
    views = srv.server.router.views()
    request = request_from_pb(_ask(20), srv.server.router.config)
    ctx = await srv.server.router.runtime.context(request)
    (expected,) = predictors.predict([ctx], views)
    by_name = {c.backend: c for c in decision.candidates}
    for name, p in expected.items():
        assert by_name[name].estimated_ttft_ms == pytest.approx(p.ttft_ms)
    assert "model" in format_decision(decision)


async def test_outside_the_training_range_the_analytic_estimate_decides(
    start_server, llamacpp_server, trained
) -> None:
    """A prompt longer than any the model was trained on is estimated analytically, and the
    explain table says why."""
    folder, _ = trained
    srv = await start_server(_config(llamacpp_server.base_url, folder))
    decision = await srv.stub.Route(_ask(600))
    for c in decision.candidates:
        assert c.estimator.startswith("analytic: prompt_tokens ")
        assert "outside the training range" in c.estimator
    assert "analytic: prompt_tokens" in format_decision(decision)


async def test_a_broken_folder_on_reload_keeps_the_running_config(
    start_server, llamacpp_server, trained, tmp_path
) -> None:
    """Reloading onto a corrupt ONNX file fails with a ConfigError naming predictors.path and
    the file; the running config and its predictors stay in force."""
    folder = tmp_path / "models"
    shutil.copytree(trained[0], folder)
    srv = await start_server(_config(llamacpp_server.base_url, folder))
    running = srv.server.router.pipeline.predictors
    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    (broken / "predictors.onnx").write_bytes(b"not onnx")
    text = yaml.safe_dump(_config(llamacpp_server.base_url, broken))
    with pytest.raises(ConfigError) as caught:
        await srv.server.reload(text)
    assert caught.value.path == "predictors.path"
    assert "predictors.onnx: not a loadable ONNX model" in caught.value.reason
    assert srv.server.router.pipeline.predictors is running
    assert (await srv.stub.Route(_ask(20))).candidates[0].estimator == "model"


def test_validation_names_a_missing_folder(tmp_path) -> None:
    """`policy validate` reports a predictors folder without a card at predictors.path."""
    backends = {"b": {"type": "scripted", "model": "m"}}
    text = yaml.safe_dump({"predictors": {"path": str(tmp_path / "nowhere")}, "backends": backends})
    result = validate_text(text, "router.yaml")
    (problem,) = result.problems
    assert problem.path == "predictors.path" and "card.json" in problem.reason


async def test_a_retrained_folder_is_reloaded(start_server, llamacpp_server, trained, tmp_path):
    """Writing a new card.json into the configured folder (what `tokenrouter train` does last)
    reloads the config with the new predictors, while the config file itself is unchanged."""
    folder = tmp_path / "models"
    shutil.copytree(trained[0], folder)
    path = tmp_path / "router.yaml"
    path.write_text(yaml.safe_dump(_config(llamacpp_server.base_url, folder)))
    server = await RouterServer.start(load_config(path), host="127.0.0.1", port=0)
    try:
        before = server.router.pipeline.predictors
        await asyncio.sleep(0.3)  # let the watcher start
        card = json.loads((folder / "card.json").read_text())
        card["created"] = "retrained"
        (folder / "card.json").write_text(json.dumps(card))
        for _ in range(100):
            if server.router.pipeline.predictors is not before:
                break
            await asyncio.sleep(0.1)
        now = server.router.pipeline.predictors
        assert now is not before and now.card.raw["created"] == "retrained"
    finally:
        await server.stop(grace=0)
