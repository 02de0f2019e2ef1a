"""capability: the backend must serve the requested model and fit the request in its context.

Filter:
    excluded when the request names a model (or alias) the backend does not serve, when
    prompt_tokens(b) + max_tokens > context_window (prompt_tokens(b): the backend's own
    count where it has a tokenizer, else the typical estimate), or when the request needs a feature
    the backend does not list: those the client named in `features`, and those the request uses
    (Request.required_features(): `tools` for offered tools or tool calls in the conversation,
    `json_mode` / `json_schema` for a response format, `vision` for an image). So a fallback, which
    places again through this filter, never moves a tool request to a backend without tools.
Parameters: none.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from router.core.framework import BackendView, RequestContext


class Capability:
    def __init__(self, name: str) -> None:
        self.name = name

    def filter(self, ctx: RequestContext, backend: BackendView) -> str | None:
        model = ctx.request.model
        if model and model not in backend.models:
            return f"does not serve model {model!r}"
        prompt = ctx.prompt_tokens_on(backend.name)
        if prompt + ctx.request.max_tokens > backend.config.context_window:
            return (
                f"prompt {prompt} + max_tokens {ctx.request.max_tokens} tokens exceeds "
                f"context window {backend.config.context_window}"
            )
        if ctx.request.features:
            missing = [f for f in ctx.request.features if f not in backend.config.features]
            if missing:
                return f"lacks feature {', '.join(missing)}"
        return None


def create(name: str, parameters: Mapping[str, Any]) -> Capability:
    if parameters:
        raise ValueError(f"takes no parameters, got {', '.join(sorted(parameters))}")
    return Capability(name)
