"""Helpers for the HTTP tests (the fixtures that start servers are in tests/conftest.py)."""

from __future__ import annotations

from typing import Any


def scripted_config(text: str = "one two three four", **backend: Any) -> dict[str, Any]:
    """A config with one scripted backend `s` (model `m`) and the capability policy."""
    spec = {"type": "scripted", "model": "m", "aliases": ["mm"], "text": text, **backend}
    return {
        "server": {"grace_period_s": 1},
        "backends": {"s": spec},
        "policies": {"capability": {"type": "capability"}},
        "profiles": {"default": {"policies": [{"policy": "capability"}]}},
    }
