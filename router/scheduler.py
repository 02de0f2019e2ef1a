"""The placement pipeline: profile -> filters -> scorers -> solver -> decision with explanation."""

from __future__ import annotations

import time
from dataclasses import dataclass

from router import estimates, solver
from router.config import LoadedConfig
from router.errors import InvalidArgument, NoFeasibleBackend
from router.framework import BackendView, Filter, RequestContext, Scorer
from router.registry import Registry
from router.types import Candidate, Decision


@dataclass(frozen=True, slots=True)
class _Step:
    name: str
    filter: Filter | None
    scorer: Scorer | None
    weight: float


class Scheduler:
    """Decides where one request runs, from the config's policies and profiles."""

    def __init__(self, loaded: LoadedConfig, registry: Registry) -> None:
        config = loaded.config
        built = {}
        for name, spec in config.policies.items():
            try:
                built[name] = registry.create(spec.type, name, spec.parameters)
            except KeyError as exc:
                raise loaded.error(("policies", name, "type"), exc.args[0]) from None
            except ValueError as exc:
                raise loaded.error(("policies", name, "parameters"), str(exc)) from None
        self._profiles: dict[str, tuple[_Step, ...]] = {}
        for pname, profile in config.profiles.items():
            steps = []
            for entry in profile.policies:
                policy = built[entry.policy]
                steps.append(
                    _Step(
                        name=entry.policy,
                        filter=policy if isinstance(policy, Filter) else None,
                        scorer=policy if isinstance(policy, Scorer) else None,
                        weight=entry.weight,
                    )
                )
            self._profiles[pname] = tuple(steps)
        self.default_profile = config.defaults.profile

    def profile_names(self) -> list[str]:
        return sorted(self._profiles)

    def profile_for(self, requested: str) -> str:
        """The profile a request runs under; raises InvalidArgument for an unknown one."""
        name = requested or self.default_profile
        if name not in self._profiles:
            raise InvalidArgument(
                "profile", f"unknown profile {name!r} (known: {', '.join(self.profile_names())})"
            )
        return name

    def decide(self, ctx: RequestContext, views: list[BackendView]) -> Decision:
        """Scores every backend for one request and picks the best feasible one."""
        started = time.perf_counter()
        profile = self.profile_for(ctx.request.profile)
        steps = self._profiles[profile]
        candidates: list[Candidate] = []
        totals: list[float | None] = []
        for view in views:
            candidate = self._evaluate(ctx, view, steps)
            candidates.append(candidate)
            totals.append(candidate.total if candidate.feasible else None)
        best = solver.argmax(totals)
        if best is None:
            raise NoFeasibleBackend([(c.backend, c.rejected_by, c.reason) for c in candidates])
        chosen, view = candidates[best], views[best]
        return Decision(
            request_id=ctx.request.request_id,
            backend=view.name,
            model=view.config.model,
            tier=view.tier,
            profile=profile,
            privacy=ctx.privacy,
            prompt_tokens=ctx.prompt_tokens,
            estimated_cost_usd=chosen.estimated_cost_usd,
            estimated_ttft_ms=chosen.estimated_ttft_ms,
            solver=solver.SINGLE,
            decision_us=int((time.perf_counter() - started) * 1e6),
            candidates=tuple(candidates),
        )

    @staticmethod
    def _evaluate(ctx: RequestContext, view: BackendView, steps: tuple[_Step, ...]) -> Candidate:
        cost = estimates.cost_usd(view.config.price, ctx.prompt_tokens, ctx.request.max_tokens)
        for step in steps:
            if step.filter is not None and (reason := step.filter.filter(ctx, view)):
                return Candidate(
                    backend=view.name,
                    feasible=False,
                    rejected_by=step.name,
                    reason=reason,
                    estimated_cost_usd=cost,
                    estimated_ttft_ms=view.observed_ttft_ms,
                )
        scores = {s.name: s.scorer.score(ctx, view) for s in steps if s.scorer is not None}
        total = sum(scores[s.name] * s.weight for s in steps if s.scorer is not None)
        return Candidate(
            backend=view.name,
            feasible=True,
            scores=scores,
            total=total,
            estimated_cost_usd=cost,
            estimated_ttft_ms=view.observed_ttft_ms,
        )
