"""Per-request policy pipeline: profile -> prepare -> hard filters -> soft filters -> scores.

Guards (policies with `binding = True`, e.g. privacy) are collected from every configured
policy: their prepare and filter run for every request, before the profile's own steps, whether
or not the profile lists them (once, if it does). With no guard that prepares configured, the
built-in detectors still scan every request (`DefaultDetection`), so that the always-on
PRIVACY_GUARD (a RESTRICTED request never reaches a third_party backend) sees the class the
content calls for.

Every backend comes out as a Candidate: feasible with its per-policy scores and weighted total,
or rejected with the policy and the reason. Joint placement of a batch is in
router/placement/placement.py.

A request's profile is resolved once, when its context is built (`profile_for`, which raises
INVALID_ARGUMENT naming `profile` for an unknown one); every later step reads `ctx.profile`
(`profile_of`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from router.config import LoadedConfig
from router.core import estimates
from router.core.errors import InvalidArgument
from router.core.framework import (
    BackendView,
    Filter,
    Preparer,
    RequestContext,
    Scorer,
    binds_every_request,
)
from router.core.guard import PRIVACY_GUARD, third_party_forbidden
from router.core.handle import PluginHandle
from router.core.registry import Policy, Registry
from router.core.types import Candidate, ChatMessage, Privacy, Request

if TYPE_CHECKING:
    from router.predict.model import Predictors


@dataclass(frozen=True, slots=True)
class Step:
    """One policy as a profile uses it."""

    name: str
    policy: Policy
    weight: float

    @property
    def resource(self) -> bool:
        return bool(getattr(self.policy, "resource", False))


class DefaultDetection:
    """Content detection by the built-in detectors, for configs without a privacy guard: raises
    the class to what the content calls for (never lowers it); filters nothing. A request on
    which nothing fires keeps its context unchanged (an UNSPECIFIED one stays UNSPECIFIED)."""

    def __init__(self, policy: Preparer, name: str = PRIVACY_GUARD) -> None:
        self.name = name
        self._policy = policy  # the registry's default guard

    def prepare(self, ctx: RequestContext) -> RequestContext:
        out = self._policy.prepare(ctx)
        if out.detected == ctx.detected:
            return ctx
        return ctx.classified(max(ctx.privacy, out.privacy), out.detected)


def guards(policies: Mapping[str, Policy], default: Callable[[], Policy]) -> tuple[Step, ...]:
    """The steps that bind every request: each guard among `policies`, in config order, after
    DefaultDetection by the `default` guard when none of them prepares."""
    found = tuple(Step(n, p, 1.0) for n, p in policies.items() if binds_every_request(p))
    if not any(isinstance(s.policy, Preparer) for s in found):
        policy = default()
        assert isinstance(policy, Preparer), "the default guard must prepare"
        found = (Step(PRIVACY_GUARD, DefaultDetection(policy), 1.0), *found)
    return found


class Profile:
    """A profile's policies in order; the steps of each contract are computed once, since
    isinstance() against runtime-checkable Protocols costs microseconds a call.

    Preparer and Filter steps start with the guards, which bind every profile; a guard the
    profile lists too is not run twice."""

    def __init__(self, name: str, steps: tuple[Step, ...], guards: tuple[Step, ...] = ()) -> None:
        self.name = name
        self.steps = steps
        self.guards = guards
        guarded = {id(g.policy) for g in guards}
        self._bound = (*guards, *(s for s in steps if id(s.policy) not in guarded))
        self._by_kind: dict[type, list[Step]] = {}
        filters = self.of(Filter)
        # The filters split by `soft` (latency's SLO filter, for one), once.
        self.hard_filters = tuple(s for s in filters if not getattr(s.policy, "soft", False))
        self.soft_filters = tuple(s for s in filters if getattr(s.policy, "soft", False))

    def of(self, kind: type) -> list[Step]:
        found = self._by_kind.get(kind)
        if found is None:
            steps = self._bound if kind in (Preparer, Filter) else self.steps
            found = self._by_kind[kind] = [s for s in steps if isinstance(s.policy, kind)]
        return found

    def lists(self, name: str) -> bool:
        """Whether the profile itself names the policy `name`."""
        return any(s.name == name for s in self.steps)


class PolicyPipeline:
    """Builds the configured policies and profiles, and evaluates requests against them."""

    def __init__(
        self,
        loaded: LoadedConfig,
        registry: Registry,
        handle: PluginHandle | None = None,
        predictors: Predictors | None = None,
    ) -> None:
        config = loaded.config
        self.version = loaded.version
        self.predictors = predictors
        self.policies: dict[str, Policy] = {}
        for name, spec in config.policies.items():
            try:
                self.policies[name] = registry.create(spec.type, name, spec.parameters, handle)
            except KeyError as exc:
                raise loaded.error(("policies", name, "type"), exc.args[0]) from None
            except ValueError as exc:
                raise loaded.error(("policies", name, "parameters"), str(exc)) from None
        self.guards = guards(self.policies, lambda: registry.default_guard(handle))
        self.profiles = {
            pname: Profile(
                pname,
                tuple(Step(e.policy, self.policies[e.policy], e.weight) for e in profile.policies),
                self.guards,
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

    def class_groups(self, views: Sequence[BackendView]) -> list[frozenset[str]]:
        """For each privacy class, the backends its guards let serve it (the always-on
        RESTRICTED rule and every guard's filter; other policies aside): health never takes out
        the last usable backend of one of these groups."""
        filters = [s for s in self.guards if isinstance(s.policy, Filter)]
        groups = []
        for privacy in (Privacy.PUBLIC, Privacy.INTERNAL, Privacy.CONFIDENTIAL, Privacy.RESTRICTED):
            request = Request("health", "", (ChatMessage("user", "x"),), 1, 0.0, privacy=privacy)
            ctx = RequestContext(request, 1, privacy)
            groups.append(
                frozenset(
                    v.name
                    for v in views
                    if not third_party_forbidden(privacy, v)
                    and not any(s.policy.filter(ctx, v) for s in filters)
                )
            )
        return groups

    def profile_of(self, ctx: RequestContext) -> Profile:
        """The profile `ctx` runs under: the one resolved when it was built (`ctx.profile`), else
        (a hand-built context) looked up by name."""
        return ctx.profile if ctx.profile is not None else self.profile_for(ctx.request.profile)

    def prepare(self, ctx: RequestContext) -> RequestContext:
        """Runs the guards' and then the profile's prepare hooks once (e.g. privacy detection)."""
        for step in self.profile_of(ctx).of(Preparer):
            ctx = step.policy.prepare(ctx)
        return ctx

    def predict(
        self, batch: Sequence[RequestContext], views: Sequence[BackendView]
    ) -> Sequence[RequestContext]:
        """`batch` with the predictors' view of every backend (one session run for all of it),
        or as it is when no predictors are configured."""
        if self.predictors is None:
            return batch
        found = self.predictors.predict(batch, views)
        return [ctx.predicted(p) for ctx, p in zip(batch, found, strict=True)]

    def evaluate(self, ctx: RequestContext, views: Sequence[BackendView]) -> list[Candidate]:
        """Filters and scores every backend for one prepared request."""
        profile = self.profile_of(ctx)
        hard = profile.hard_filters
        rejected: dict[str, tuple[str, str]] = {}
        for view in views:
            if why := _hard_reject(ctx, view, hard):
                rejected[view.name] = why
        for step in profile.soft_filters:
            reasons = {}
            for v in views:
                if v.name not in rejected:
                    reasons[v.name] = step.policy.filter(ctx, v)
            if None in reasons.values():  # someone passes: the others are dropped
                rejected.update({n: (step.name, r) for n, r in reasons.items() if r})
        scorers = profile.of(Scorer)
        output_tokens = ctx.output_tokens
        predicted = bool(ctx.predictions)
        out = []
        for view in views:
            name = view.name
            source, tokens = "analytic", output_tokens
            if predicted:
                source = estimates.estimator(ctx, view)
                tokens = estimates.expected_output_tokens(ctx, view) or output_tokens
            cost = estimates.cost_usd(view.config.price, ctx.prompt_tokens_on(name), tokens)
            ttft = estimates.estimate_ttft_ms(ctx, view)
            total_ms = estimates.estimate_total_ms(ctx, view, ttft)
            if name in rejected:
                policy, reason = rejected[name]
                out.append(
                    Candidate(name, False, {}, 0.0, policy, reason, cost, ttft, total_ms, source)
                )
                continue
            scores = {}
            for s in scorers:
                scores[s.name] = _clamp(s.policy.score(ctx, view))
            total = sum([scores[s.name] * s.weight for s in scorers])
            out.append(Candidate(name, True, scores, total, "", "", cost, ttft, total_ms, source))
        return out

    def is_resource(self, policy_name: str) -> bool:
        """Whether a policy excludes for lack of capacity or budget."""
        return bool(getattr(self.policies.get(policy_name), "resource", False))


def _hard_reject(
    ctx: RequestContext, view: BackendView, hard: Sequence[Step]
) -> tuple[str, str] | None:
    if ctx.excluded and view.name in ctx.excluded:
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
    score = float(score)
    return 1.0 if score > 1.0 else score if score > 0.0 else 0.0
