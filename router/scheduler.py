"""Per-request policy pipeline: profile -> prepare -> hard filters -> soft filters -> scores.

Every backend comes out as a Candidate: feasible with its per-policy scores and weighted total,
or rejected with the policy and the reason. Joint placement of a batch is in router/placement.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from policies.privacy import third_party_forbidden
from router import estimates
from router.config import LoadedConfig
from router.errors import InvalidArgument
from router.framework import (
    BackendView,
    Filter,
    Preparer,
    RequestContext,
    Scorer,
)
from router.registry import Policy, Registry
from router.types import Candidate, Privacy

# Always on, whatever the profile: a RESTRICTED request never reaches a third-party backend.
PRIVACY_GUARD = "privacy"


@dataclass(frozen=True, slots=True)
class Step:
    """One policy as a profile uses it."""

    name: str
    policy: Policy
    weight: float

    @property
    def resource(self) -> bool:
        return bool(getattr(self.policy, "resource", False))


class Profile:
    """A profile's policies in order; the steps of each contract are computed once, since
    isinstance() against runtime-checkable Protocols costs microseconds a call."""

    def __init__(self, name: str, steps: tuple[Step, ...]) -> None:
        self.name = name
        self.steps = steps
        self._by_kind: dict[type, list[Step]] = {}

    def of(self, kind: type) -> list[Step]:
        found = self._by_kind.get(kind)
        if found is None:
            found = self._by_kind[kind] = [s for s in self.steps if isinstance(s.policy, kind)]
        return found


class Scheduler:
    """Builds the configured policies and profiles, and evaluates requests against them."""

    def __init__(
        self, loaded: LoadedConfig, registry: Registry, services: Mapping[str, Any] | None = None
    ) -> None:
        config = loaded.config
        self.version = loaded.version
        self.policies: dict[str, Policy] = {}
        for name, spec in config.policies.items():
            try:
                self.policies[name] = registry.create(spec.type, name, spec.parameters, services)
            except KeyError as exc:
                raise loaded.error(("policies", name, "type"), exc.args[0]) from None
            except ValueError as exc:
                raise loaded.error(("policies", name, "parameters"), str(exc)) from None
        self.profiles = {
            pname: Profile(
                pname,
                tuple(Step(e.policy, self.policies[e.policy], e.weight) for e in profile.policies),
            )
            for pname, profile in config.profiles.items()
        }
        self.default_profile = config.defaults.profile

    def profile_for(self, requested: str) -> Profile:
        """The profile a request runs under; raises InvalidArgument for an unknown one."""
        name = requested or self.default_profile
        try:
            return self.profiles[name]
        except KeyError:
            known = ", ".join(sorted(self.profiles))
            raise InvalidArgument("profile", f"unknown profile {name!r} (known: {known})") from None

    def prepare(self, ctx: RequestContext) -> RequestContext:
        """Runs the profile's prepare hooks once (e.g. privacy detection)."""
        for step in self.profile_for(ctx.request.profile).of(Preparer):
            ctx = step.policy.prepare(ctx)
        return ctx

    def evaluate(self, ctx: RequestContext, views: Sequence[BackendView]) -> list[Candidate]:
        """Filters and scores every backend for one prepared request."""
        profile = self.profile_for(ctx.request.profile)
        hard = [s for s in profile.of(Filter) if not getattr(s.policy, "soft", False)]
        soft = [s for s in profile.of(Filter) if getattr(s.policy, "soft", False)]
        rejected: dict[str, tuple[str, str]] = {}
        for view in views:
            if why := _hard_reject(ctx, view, hard):
                rejected[view.name] = why
        for step in soft:
            kept = [v for v in views if v.name not in rejected]
            reasons = {v.name: step.policy.filter(ctx, v) for v in kept}
            if any(r is None for r in reasons.values()):
                rejected.update({n: (step.name, r) for n, r in reasons.items() if r})
        scorers = profile.of(Scorer)
        out = []
        for view in views:
            cost = estimates.cost_usd(
                view.config.price, ctx.prompt_tokens_on(view.name), ctx.output_tokens
            )
            ttft = estimates.estimate_ttft_ms(ctx, view)
            total_ms = estimates.estimate_total_ms(ctx, view, ttft)
            if view.name in rejected:
                policy, reason = rejected[view.name]
                out.append(
                    Candidate(
                        view.name,
                        False,
                        rejected_by=policy,
                        reason=reason,
                        estimated_cost_usd=cost,
                        estimated_ttft_ms=ttft,
                        estimated_total_ms=total_ms,
                    )
                )
                continue
            scores = {s.name: _clamp(s.policy.score(ctx, view)) for s in scorers}
            total = sum(scores[s.name] * s.weight for s in scorers)
            out.append(
                Candidate(
                    view.name,
                    True,
                    scores=scores,
                    total=total,
                    estimated_cost_usd=cost,
                    estimated_ttft_ms=ttft,
                    estimated_total_ms=total_ms,
                )
            )
        return out

    def is_resource(self, policy_name: str) -> bool:
        """Whether a policy excludes for lack of capacity or budget."""
        return bool(getattr(self.policies.get(policy_name), "resource", False))


def _hard_reject(
    ctx: RequestContext, view: BackendView, hard: list[Step]
) -> tuple[str, str] | None:
    if view.name in ctx.excluded:
        return "fallback", f"already failed for this request: {ctx.excluded[view.name]}"
    if view.health_reason:
        return "health", view.health_reason
    if third_party_forbidden(ctx.privacy, view):
        detected = f" (detected: {', '.join(ctx.detected)})" if ctx.detected else ""
        return PRIVACY_GUARD, (
            f"{Privacy.RESTRICTED.name} request{detected} may never use a third_party backend"
        )
    for step in hard:
        if reason := step.policy.filter(ctx, view):
            return step.name, reason
    return None


def _clamp(score: float) -> float:
    return min(1.0, max(0.0, float(score)))
