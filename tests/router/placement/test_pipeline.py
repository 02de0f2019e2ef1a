"""The policy pipeline (router/placement/pipeline.py) against small fake policies: profiles, guards,
hard and soft filters, scores and the always-on checks. No model, no server."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import yaml

from router.config import parse_config
from router.core.errors import InvalidArgument
from router.core.framework import RequestContext
from router.core.registry import default_registry
from router.core.types import Privacy
from router.placement.pipeline import PolicyPipeline
from tests.conftest import backend_view, context

CALLS: list[str] = []


class Drop:
    """A hard (or, with soft: true, soft) filter dropping the backends named in `drop`."""

    def __init__(self, name: str, parameters: dict[str, Any]) -> None:
        self.name = name
        self.drop = set(parameters.get("drop", ()))
        self.soft = bool(parameters.get("soft"))
        self.resource = bool(parameters.get("resource"))
        self.binding = bool(parameters.get("binding"))

    def filter(self, ctx: RequestContext, backend: Any) -> str | None:
        CALLS.append(f"{self.name} {backend.name}")
        return f"{backend.name} is dropped" if backend.name in self.drop else None


class Rate:
    """A scorer giving each backend the score in `scores` (default 0.5)."""

    def __init__(self, name: str, parameters: dict[str, Any]) -> None:
        self.name = name
        self.scores = parameters.get("scores", {})

    def score(self, ctx: RequestContext, backend: Any) -> float:
        return self.scores.get(backend.name, 0.5)


class Tag:
    """A preparer that records its run and sets the expected output tokens."""

    def __init__(self, name: str, parameters: dict[str, Any]) -> None:
        self.name = name
        self.binding = bool(parameters.get("binding"))

    def prepare(self, ctx: RequestContext) -> RequestContext:
        CALLS.append(f"prepare {self.name}")
        return dataclasses.replace(ctx, expected_output_tokens=ctx.expected_output_tokens + 1)


def pipeline(policies: dict[str, Any], profiles: dict[str, list[Any]]) -> PolicyPipeline:
    """A pipeline over fake policies; a profile entry is a name or (name, weight)."""
    registry = default_registry()
    for type_name, factory in {"drop": Drop, "rate": Rate, "tag": Tag}.items():
        registry.register(type_name, factory)
    data = {
        "backends": {n: {"type": "scripted", "model": "m"} for n in ("a", "b", "c")},
        "policies": policies,
        "profiles": {
            name: {
                "policies": [
                    {"policy": e} if isinstance(e, str) else {"policy": e[0], "weight": e[1]}
                    for e in entries
                ]
            }
            for name, entries in profiles.items()
        },
    }
    CALLS.clear()
    return PolicyPipeline(parse_config(yaml.safe_dump(data), "<test>"), registry)


VIEWS = [backend_view("a", model="m"), backend_view("b", model="m"), backend_view("c", model="m")]


def by_backend(candidates) -> dict[str, Any]:
    return {c.backend: c for c in candidates}


def test_scores_are_clamped_and_weighted_by_the_profile():
    """Each feasible backend gets every scorer's score clamped to [0, 1] and the weighted sum."""
    p = pipeline(
        {
            "speed": {"type": "rate", "parameters": {"scores": {"a": 2.0, "b": -1.0}}},
            "price": {"type": "rate", "parameters": {"scores": {"a": 0.25, "b": 1.0}}},
        },
        {"default": [("speed", 2.0), ("price", 1.0)]},
    )
    out = by_backend(p.evaluate(p.prepare(context()), VIEWS))
    assert out["a"].scores == {"speed": 1.0, "price": 0.25} and out["a"].total == 2.25
    assert out["b"].scores == {"speed": 0.0, "price": 1.0} and out["b"].total == 1.0
    assert out["c"].total == pytest.approx(1.5)


def test_a_hard_filter_rejects_with_its_name_and_reason_and_keeps_the_estimates():
    """A hard-filtered backend is infeasible, names the policy and reason, and still carries
    cost and latency estimates; the others stay feasible."""
    p = pipeline({"no-b": {"type": "drop", "parameters": {"drop": ["b"]}}}, {"default": ["no-b"]})
    out = by_backend(p.evaluate(context(), VIEWS))
    assert not out["b"].feasible and out["b"].rejected_by == "no-b"
    assert out["b"].reason == "b is dropped" and out["b"].estimated_ttft_ms > 0
    assert out["a"].feasible and out["c"].feasible


def test_a_soft_filter_binds_only_when_something_passes_it():
    """A soft filter drops among the hard filters' survivors, unless it would drop them all."""
    p = pipeline(
        {
            "hard": {"type": "drop", "parameters": {"drop": ["a"]}},
            "prefer-c": {"type": "drop", "parameters": {"drop": ["a", "b"], "soft": True}},
            "never": {"type": "drop", "parameters": {"drop": ["a", "b", "c"], "soft": True}},
        },
        {"default": ["hard", "prefer-c"], "stuck": ["hard", "never"]},
    )
    out = by_backend(p.evaluate(context(), VIEWS))
    assert out["a"].rejected_by == "hard" and out["b"].rejected_by == "prefer-c"
    assert out["c"].feasible
    stuck = by_backend(p.evaluate(context(profile="stuck"), VIEWS))
    assert stuck["a"].rejected_by == "hard" and stuck["b"].feasible and stuck["c"].feasible


def test_the_built_in_checks_come_before_any_policy():
    """A backend that already failed the request, an unhealthy one and a third_party one for a
    RESTRICTED request are rejected before any filter of the profile runs on them."""
    p = pipeline({"all": {"type": "drop", "parameters": {"drop": []}}}, {"default": ["all"]})
    views = [
        backend_view("a", model="m"),
        dataclasses.replace(backend_view("b", model="m"), health_reason="ejected"),
        backend_view("c", model="m", tier="remote_api"),
    ]
    ctx = dataclasses.replace(context(privacy=Privacy.RESTRICTED), excluded={"a": "503"})
    out = by_backend(p.evaluate(ctx, views))
    assert (out["a"].rejected_by, out["b"].rejected_by, out["c"].rejected_by) == (
        "fallback",
        "health",
        "privacy",
    )
    assert "503" in out["a"].reason and out["b"].reason == "ejected"
    assert CALLS == []


def test_a_guard_binds_every_profile_once():
    """A binding policy prepares and filters for a profile that does not list it, before the
    profile's own steps, and only once for a profile that does."""
    p = pipeline(
        {
            "guard": {"type": "drop", "parameters": {"drop": ["c"], "binding": True}},
            "tagger": {"type": "tag", "parameters": {"binding": True}},
            "own": {"type": "drop", "parameters": {"drop": []}},
        },
        {"default": ["own"], "listed": ["guard", "tagger", "own"]},
    )
    for profile in ("default", "listed"):
        CALLS.clear()
        ctx = p.prepare(context(profile=profile))
        out = by_backend(p.evaluate(ctx, VIEWS[2:]))
        assert ctx.expected_output_tokens == 1 and out["c"].rejected_by == "guard"
        assert CALLS == ["prepare tagger", "guard c"]


def test_profiles_resolve_by_name_with_the_default_for_none():
    """'' is the default profile; an unknown name is INVALID_ARGUMENT naming `profile` and the
    known ones."""
    p = pipeline({"own": {"type": "drop"}}, {"default": ["own"], "other": ["own"]})
    assert p.profile_for("").name == "default" and p.profile_for("other").name == "other"
    with pytest.raises(InvalidArgument) as caught:
        p.profile_for("nope")
    assert caught.value.field == "profile" and "known: default, other" in str(caught.value)


def test_the_context_profile_wins_over_the_request_name():
    """Once resolved into the context, the profile is not looked up again by name."""
    p = pipeline(
        {"no-a": {"type": "drop", "parameters": {"drop": ["a"]}}, "own": {"type": "drop"}},
        {"default": ["own"], "strict": ["no-a"]},
    )
    ctx = dataclasses.replace(context(profile="nope"), profile=p.profiles["strict"])
    assert p.profile_of(ctx).name == "strict"
    assert by_backend(p.evaluate(ctx, VIEWS))["a"].rejected_by == "no-a"


def test_resource_policies_are_known_by_name():
    """is_resource says which policies exclude for lack of capacity or budget."""
    p = pipeline(
        {"full": {"type": "drop", "parameters": {"resource": True}}, "own": {"type": "drop"}},
        {"default": ["own", "full"]},
    )
    assert p.is_resource("full") and not p.is_resource("own") and not p.is_resource("fallback")
