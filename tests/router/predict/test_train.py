"""Training on a real request log: the exported ONNX model computes what scikit-learn does, the
card says what it learned from, and `tokenrouter train` writes it all."""

from __future__ import annotations

import json

import numpy as np

from router.predict import train as training
from router.predict.features import FEATURES, TARGETS
from router.predict.model import Predictors
from router.predict.observations import read_logs
from router.tools.cli import main


def test_the_log_records_every_attempt_with_its_features(request_log) -> None:
    """Each request-log line carries its counts and one attempt per backend tried, with the
    features and timings a predictor learns from and no message content."""
    records = [json.loads(line) for line in request_log.read_text().splitlines()]
    assert len(records) == 48
    for record in records:
        assert record["messages"] == 1 and record["tools"] == 0
        assert len(record["tenant_hash"]) == 16
        (attempt,) = record["attempts"]
        assert attempt["backend"] in ("edge-smollm2", "gpu") and attempt["status"] == "OK"
        assert attempt["completion_tokens"] >= 1 and attempt["ttft_ms"] > 0
        assert attempt["total_ms"] >= attempt["ttft_ms"] and attempt["est_ttft_ms"] > 0
        assert attempt["estimator"] == "analytic"
        assert attempt["in_flight"] >= 0 and attempt["queued"] >= 0
        assert "Repeat" not in json.dumps(record)
    assert max(r["attempts"][0]["in_flight"] for r in records) >= 1  # concurrency showed


def test_onnx_predictions_match_scikit_learn(trained) -> None:
    """The ONNX model, run by onnxruntime, gives the numbers the scikit-learn models it was
    exported from give, for every target and row (float32 tolerance)."""
    folder, rows = trained
    predictors = Predictors.load(folder)
    backends = predictors.card.backends
    models = training.fit(rows, backends)
    x = training.matrix(rows, backends)
    expected = training.predict(models, x)
    got = predictors.run(x)
    for target in TARGETS:
        np.testing.assert_allclose(got[target], expected[target], rtol=1e-4)


def test_the_card_describes_the_data_and_the_held_out_error(trained) -> None:
    """card.json names both backends, the feature ranges seen, the rows and time span, and a
    held-out error per backend next to the analytic estimate's; MODEL_CARD.md says the same."""
    folder, rows = trained
    card = json.loads((folder / "card.json").read_text())
    assert card["backends"] == ["edge-smollm2", "gpu"]
    assert set(card["ranges"]) == set(FEATURES)
    low, high = card["ranges"]["max_tokens"]
    assert 2 <= low <= high <= 14
    assert card["rows"]["ttft_ms"] == len(rows)
    assert card["time_span"][0] <= card["time_span"][1]
    for backend in card["backends"]:
        ttft = card["held_out"][backend]["ttft_ms"]
        assert ttft["rows"] > 0 and ttft["model_mape"] >= 0 and ttft["analytic_mape"] >= 0
    text = (folder / "MODEL_CARD.md").read_text()
    assert "| gpu | ttft_ms |" in text and "| edge-smollm2 | total_ms |" in text


def test_train_command_writes_the_folder(request_log, tmp_path, capsys) -> None:
    """`tokenrouter train --log FILE --out DIR` writes a folder the router can load, and prints
    the held-out table."""
    out = tmp_path / "models"
    assert main(["train", "--log", str(request_log), "--out", str(out)]) == 0
    assert Predictors.load(out).card.backends == ("edge-smollm2", "gpu")
    printed = capsys.readouterr().out
    assert "48 requests, 48 attempts" in printed and "| backend | target |" in printed


def test_train_command_refuses_too_few_rows(tmp_path, capsys) -> None:
    """A log with too few finished attempts exits 2 saying how many there were and how many
    are needed; nothing is written."""
    log = tmp_path / "short.jsonl"
    log.write_text('{"ts": 1, "attempts": []}\nnot json\n')
    assert main(["train", "--log", str(log), "--out", str(tmp_path / "m")]) == 2
    assert "0 finished attempts in the logs (at least 20" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_reading_a_log_skips_oversized_and_malformed_lines(tmp_path) -> None:
    """A line longer than the limit, a non-object and a record without attempts are skipped
    and counted, and the good line after them is still read."""
    good = {
        "ts": 5,
        "max_tokens": 8,
        "messages": 1,
        "tools": 0,
        "attempts": [
            {
                "backend": "b",
                "status": "OK",
                "completion_tokens": 3,
                "ttft_ms": 10.0,
                "decode_ms": 4.0,
                "prompt_tokens": 9,
                "in_flight": 0,
                "queued": 0,
            }
        ],
    }
    log = tmp_path / "log.jsonl"
    huge = '{"pad": "' + "x" * (2 << 20) + '"}'
    log.write_text("\n".join([huge, "[1, 2]", '{"ts": 1}', json.dumps(good)]) + "\n")
    found = read_logs([log])
    assert found.skipped == 3 and found.records == 1
    (row,) = found.rows
    assert row["features"] == (9.0, 8.0, 0.0, 0.0, 1.0, 0.0)
    assert row["tpot_ms"] == 2.0 and row["output_tokens"] == 3.0
