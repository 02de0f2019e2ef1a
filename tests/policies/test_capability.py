"""capability policy: model and alias matching, and the context window."""

from __future__ import annotations

import pytest

from backends.llamacpp import LlamaCppConfig
from policies.capability import create
from router.core.framework import BackendView, RequestContext
from router.core.types import ChatMessage, Privacy, Request

BACKEND = BackendView(
    name="b",
    config=LlamaCppConfig(
        type="llamacpp", model="m", aliases=["alias"], gguf="x", context_window=100
    ),
)


def ctx(model: str = "", prompt_tokens: int = 10, max_tokens: int = 10) -> RequestContext:
    req = Request("r", "t", (ChatMessage("user", "x"),), max_tokens, 0.0, model=model)
    return RequestContext(req, prompt_tokens, Privacy.PUBLIC)


@pytest.mark.parametrize(
    ("context", "excluded"),
    [
        (ctx(), None),
        (ctx(model="m"), None),
        (ctx(model="alias"), None),
        (ctx(model="other"), "does not serve model 'other'"),
        (ctx(prompt_tokens=90, max_tokens=10), None),
        (ctx(prompt_tokens=91, max_tokens=10), "exceeds context window 100"),
    ],
)
def test_capability_filter(context, excluded):
    """The backend is kept or excluded with the expected reason."""
    reason = create("cap", {}).filter(context, BACKEND)
    assert reason == excluded if excluded is None else excluded in reason


def test_capability_rejects_parameters():
    """capability takes no parameters and says so."""
    with pytest.raises(ValueError, match="takes no parameters"):
        create("cap", {"x": 1})


def test_context_window_uses_the_backends_own_prompt_count():
    """The window check reads the backend's own prompt count, not the request-wide one."""
    from dataclasses import replace

    fits_elsewhere = replace(ctx(prompt_tokens=10, max_tokens=10), backend_prompt_tokens={"b": 95})
    assert "exceeds context window 100" in create("cap", {}).filter(fits_elsewhere, BACKEND)
    fits_here = replace(ctx(prompt_tokens=95, max_tokens=10), backend_prompt_tokens={"b": 10})
    assert create("cap", {}).filter(fits_here, BACKEND) is None
