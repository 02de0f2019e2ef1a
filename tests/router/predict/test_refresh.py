"""Online refresh: a separate `tokenrouter train --if-better` process replaces the predictors
only when the new models predict TTFT better on the latest rows than the current ones."""

from __future__ import annotations

import json
import shutil

import yaml

from router.config import parse_config
from router.config.validate import validate_text
from router.predict.observations import read_logs
from router.predict.refresh import refresh_once
from router.predict.train import train


def _config(log, folder):
    data = {
        "server": {"request_log": str(log)},
        "predictors": {"path": str(folder), "refresh_minutes": 5},
        "backends": {"b": {"type": "scripted", "model": "m"}},
    }
    return parse_config(yaml.safe_dump(data), "<refresh>").config


async def test_a_worse_current_model_is_replaced(request_log, tmp_path) -> None:
    """Predictors trained on TTFTs twenty times too long are replaced by the refresh, and the
    new card records both errors, the new one lower."""
    rows = read_logs([request_log]).rows
    bad = [{**r, "ttft_ms": r["ttft_ms"] * 20} for r in rows]
    folder = tmp_path / "models"
    train(bad, folder)
    assert await refresh_once(_config(request_log, folder)) == 0
    card = json.loads((folder / "card.json").read_text())
    assert card["replaced"]["new_ttft_mape"] < card["replaced"]["current_ttft_mape"]


async def test_a_better_current_model_is_kept(request_log, trained, tmp_path) -> None:
    """Predictors fit on every row (the held-out ones included) beat models fit on 70% of them,
    so the refresh keeps the folder byte for byte."""
    folder = tmp_path / "models"
    shutil.copytree(trained[0], folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert await refresh_once(_config(request_log, folder)) == 0
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_a_refresh_needs_a_request_log(trained) -> None:
    """refresh_minutes without server.request_log is a problem at predictors.refresh_minutes."""
    data = {
        "predictors": {"path": str(trained[0]), "refresh_minutes": 5},
        "backends": {"b": {"type": "scripted", "model": "m"}},
    }
    (problem,) = validate_text(yaml.safe_dump(data), "router.yaml").problems
    assert problem.path == "predictors.refresh_minutes"
    assert "server.request_log" in problem.reason
