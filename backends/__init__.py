"""Backends produce tokens: edge (llama.cpp in-process), cloud GPU and remote APIs."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from backends.base import Backend
    from router.config import BackendCommon

# Config `type` -> "module:class"; imported on first use so unused backends cost nothing.
BACKEND_TYPES: dict[str, str] = {
    "llamacpp": "backends.llamacpp:LlamaCppBackend",
    "scripted": "backends.scripted:ScriptedBackend",
    "openai": "backends.openai_compat:OpenAICompatBackend",
    "anthropic": "backends.anthropic:AnthropicBackend",
}


def create_backend(name: str, config: BackendCommon) -> Backend:
    """Builds the backend for a config entry, by its `type`."""
    kind = getattr(config, "type", "")
    module_name, _, class_name = BACKEND_TYPES[kind].partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(name, config)
