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


def test_features_the_request_uses_exclude_backends_without_them():
    """Tools, a JSON schema or an image exclude a backend lacking that feature, unlisted."""
    from router.core.types import ContentPart, ResponseFormat, ToolSpec

    text_only = BackendView(
        name="t",
        config=LlamaCppConfig(type="llamacpp", model="m", gguf="x", features=["streaming"]),
    )
    image = ChatMessage("user", "", parts=(ContentPart("image", url="https://x/a.png"),))
    cases = [
        (Request("r", "t", (ChatMessage("user", "x"),), 8, 0.0, tools=(ToolSpec("f"),)), "tools"),
        (
            Request(
                "r",
                "t",
                (ChatMessage("user", "x"),),
                8,
                0.0,
                response_format=ResponseFormat("json_schema", "s", "{}"),
            ),
            "json_schema",
        ),
        (Request("r", "t", (image,), 8, 0.0), "vision"),
    ]
    policy = create("cap", {})
    for req, feature in cases:
        reason = policy.filter(RequestContext(req, 10, Privacy.PUBLIC), text_only)
        assert reason == f"lacks feature {feature}"
        kept = policy.filter(RequestContext(req, 10, Privacy.PUBLIC), BACKEND)  # no vision
        assert kept == ("lacks feature vision" if feature == "vision" else None)
