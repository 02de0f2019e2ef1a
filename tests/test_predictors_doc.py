"""docs/predictors.md stays true: its config example validates against the schema, and the
`tokenrouter train` options it shows exist."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from router.config import parse_config
from router.tools import train

DOC = Path(__file__).resolve().parents[1] / "docs" / "predictors.md"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.M | re.S)


def _blocks(lang: str) -> list[str]:
    return [m.group(2) for m in BLOCK.finditer(DOC.read_text()) if m.group(1) == lang]


def test_the_config_examples_fit_the_schema() -> None:
    """Each YAML example, with a backend added, parses as a config naming a predictors folder
    and a request log."""
    blocks = _blocks("yaml")
    assert len(blocks) == 2
    for text in blocks:
        data = yaml.safe_load(text)
        data["backends"] = {"b": {"type": "scripted", "model": "m"}}
        config = parse_config(yaml.safe_dump(data), "predictors.md").config
        assert config.predictors.path == "/var/lib/tokenrouter/models"
        assert config.server.request_log


def test_the_train_command_shown_parses() -> None:
    """Every `tokenrouter train` line of the shell example is accepted by its parser."""
    lines = [line for text in _blocks("sh") for line in text.splitlines()]
    commands = [
        line.split("#")[0].split() for line in lines if line.startswith("tokenrouter train")
    ]
    assert commands
    for words in commands:
        args = train._parser().parse_args(words[2:])
        assert args.log and args.out
