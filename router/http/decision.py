"""How the router's decision travels back over HTTP: response headers and an extra body field.

Headers (every answer that was placed): `x-tokenrouter-backend`, `-tier`, `-solver`,
`-config-version`, `-request-id`. Body: a `tokenrouter` object next to the protocol's own fields
(OpenAI and Anthropic SDKs keep unknown fields: `response.model_extra["tokenrouter"]`), with the
backend, tier, solver, decision time, config version, estimated and actual cost, and the backends
tried.
"""

from __future__ import annotations

from typing import Any

from router.core.types import Decision, Usage


def decision_headers(decision: Decision) -> list[tuple[bytes, bytes]]:
    """The response headers that name the placement."""
    return [
        (b"x-tokenrouter-backend", decision.backend.encode()),
        (b"x-tokenrouter-tier", decision.tier.value.encode()),
        (b"x-tokenrouter-solver", decision.solver.encode()),
        (b"x-tokenrouter-config-version", decision.config_version.encode()),
        (b"x-tokenrouter-request-id", decision.request_id.encode()),
    ]


def decision_fields(decision: Decision, usage: Usage | None = None) -> dict[str, Any]:
    """The `tokenrouter` body field: the decision, and what it cost once known."""
    fields: dict[str, Any] = {
        "request_id": decision.request_id,
        "backend": decision.backend,
        "model": decision.model,
        "tier": decision.tier.value,
        "profile": decision.profile,
        "privacy": decision.privacy.name.lower(),
        "solver": decision.solver,
        "decision_us": decision.decision_us,
        "config_version": decision.config_version,
        "estimated_cost_usd": decision.estimated_cost_usd,
        "estimated_ttft_ms": decision.estimated_ttft_ms,
    }
    if usage is not None:
        fields.update(
            cost_usd=usage.cost_usd,
            ttft_ms=round(usage.ttft_ms, 3),
            total_ms=round(usage.total_ms, 3),
            backends_tried=list(usage.backends_tried),
        )
    return fields
