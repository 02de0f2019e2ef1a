"""Serving the predictors: one run for a batch, and the analytic estimate wherever the model
cannot judge (an unknown backend, an input outside its training range, a broken file)."""

from __future__ import annotations

import json
import shutil

import pytest

from router.core.framework import RequestContext
from router.core.types import ChatMessage, Privacy, Request
from router.predict.model import PredictorError, Predictors
from tests.conftest import backend_view, context


def test_predictions_cover_every_candidate_of_a_batch(trained) -> None:
    """A batch of two requests over both trained backends gets a model prediction for each
    pair, TTFT and total time positive and the output length within max_tokens."""
    folder, _ = trained
    predictors = Predictors.load(folder)
    views = [backend_view("edge-smollm2"), backend_view("gpu")]
    batch = [context(prompt_tokens=40, max_tokens=8), context(prompt_tokens=90, max_tokens=12)]
    found = predictors.predict(batch, views)
    for ctx, per_backend in zip(batch, found, strict=True):
        for name in ("edge-smollm2", "gpu"):
            p = per_backend[name]
            assert not p.fallback
            assert p.ttft_ms > 0 and p.total_ms >= p.ttft_ms
            assert 1 <= p.output_tokens <= ctx.request.max_tokens


def test_out_of_range_inputs_and_unknown_backends_fall_back(trained) -> None:
    """A prompt longer than any in training, a queue deeper than any seen and a backend the
    model never saw each get no prediction, with the reason naming what was outside."""
    folder, _ = trained
    predictors = Predictors.load(folder)
    high = predictors.card.raw["ranges"]["prompt_tokens"][1]
    views = [backend_view("gpu"), backend_view("edge-smollm2", in_flight=50), backend_view("x")]
    (found,) = predictors.predict([context(prompt_tokens=int(high) + 1, max_tokens=8)], views)
    assert found["gpu"].fallback.startswith(f"prompt_tokens {int(high) + 1} outside the training")
    (found,) = predictors.predict([context(prompt_tokens=20, max_tokens=8)], views)
    assert not found["gpu"].fallback
    assert found["edge-smollm2"].fallback.startswith("in_flight 50 outside the training range")
    assert found["x"].fallback == "backend x not in the training data"
    messages = tuple(ChatMessage("user", "x") for _ in range(501))
    crowded = RequestContext(Request("r", "t", messages, 8, 0.0), 20, Privacy.UNSPECIFIED)
    (found,) = predictors.predict([crowded], views[:1])
    assert found["gpu"].fallback.startswith("messages 501 outside the training range")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "card.json").unlink(), "card.json: No such file"),
        (lambda d: (d / "card.json").write_text("{"), "card.json: not JSON"),
        (lambda d: (d / "card.json").write_text('{"format": 9}'), "not a format-1 model card"),
        (lambda d: (d / "predictors.onnx").write_bytes(b"garbage"), "not a loadable ONNX model"),
        (lambda d: (d / "predictors.onnx").unlink(), "predictors.onnx: No such file"),
    ],
)
def test_a_broken_folder_is_a_clear_error(trained, tmp_path, damage, message) -> None:
    """A missing or malformed card, and a missing or corrupt ONNX file, each raise a
    PredictorError naming the file and what is wrong with it."""
    folder = tmp_path / "models"
    shutil.copytree(trained[0], folder)
    damage(folder)
    with pytest.raises(PredictorError, match=message):
        Predictors.load(folder)


def test_a_card_naming_a_path_outside_its_folder_is_refused(trained, tmp_path) -> None:
    """The card's model entry must be a file name in the folder, never a path elsewhere."""
    folder = tmp_path / "models"
    shutil.copytree(trained[0], folder)
    card = json.loads((folder / "card.json").read_text())
    card["model"] = "../elsewhere.onnx"
    (folder / "card.json").write_text(json.dumps(card))
    with pytest.raises(PredictorError, match="a model file name in the folder"):
        Predictors.load(folder)
