"""budget: per-tenant spend limits per time window.

    worst_cost(r, b) = prompt_bound x input price + max_tokens x output price + fee
    excluded when worst_cost(r, b) > limit - spent - held   (for every budget that applies)
    batch: sum of worst_cost over a tenant's placed requests <= what is left of its budget
`prompt_bound` is b's exact prompt count where it has a tokenizer, else an upper bound (UTF-8
bytes + template allowance, router/core/estimates.py), so a hold always covers the real cost.
Admission holds worst_cost; the end of the stream settles the real cost, a stream that ends early
after its first token settles the prompt and the tokens produced so far; a failure or a cancel
before the first token releases it.
When budgets are why nothing is feasible, the request gets RESOURCE_EXHAUSTED naming the budget.
Parameters:
    budgets ([]): list of {tenant, limit_usd, window}; tenant "*" gives every tenant its own
        budget of that size; window is seconds or a duration like "30m", "1h", "1d", "30d".
Example:
    budgets:
      - {tenant: acme, limit_usd: 50, window: 1d}
      - {tenant: "*", limit_usd: 5, window: 1h}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import Field, field_validator

from policies.params import Params, duration, duration_text, parse
from router.core.budgets import Account, BudgetStore, Holds
from router.core.errors import ResourceExhausted
from router.core.estimates import cost_usd
from router.core.framework import BackendView, Constraint, RequestContext, SideLimit
from router.core.handle import PluginHandle
from router.core.types import Usage


class BudgetSpec(Params):
    tenant: str = Field(min_length=1)
    limit_usd: float = Field(ge=0)
    window: float = Field(description="seconds")

    _window = field_validator("window", mode="before")(duration)


class BudgetParams(Params):
    budgets: list[BudgetSpec] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Applicable:
    label: str  # e.g. "budget acme/1d"
    key: str
    spec: BudgetSpec


class Budget:
    resource = True

    def __init__(self, name: str, params: BudgetParams, store: BudgetStore) -> None:
        self.name = name
        self.params = params
        self.store = store

    def _key(self, entry: int, tenant: str, window: str) -> str:
        """The store key of budget `entry` (its position in `budgets`) for `tenant`."""
        return f"{self.name}:{entry}:{tenant}:{window}"

    def _applicable(self, tenant: str) -> list[_Applicable]:
        """The budgets binding `tenant`; each has its own account, even with equal windows."""
        out = []
        for i, spec in enumerate(self.params.budgets):
            if spec.tenant in (tenant, "*"):
                window = duration_text(spec.window)
                key = self._key(i, tenant, window)
                out.append(_Applicable(f"budget {tenant}/{window}", key, spec))
        return out

    def budget_accounts(self) -> list[tuple[str, str, int, float, float]]:
        """(tenant, window, entry, limit_usd, left_usd) of each budget naming one tenant, for
        metrics; a "*" budget is left out (its accounts are per client-given tenant)."""
        out = []
        for i, spec in enumerate(self.params.budgets):
            if spec.tenant != "*":
                window = duration_text(spec.window)
                key = self._key(i, spec.tenant, window)
                left = self.store.available(key, spec.limit_usd, spec.window)
                out.append((spec.tenant, window, i, spec.limit_usd, left))
        return out

    def _left(self, a: _Applicable) -> float:
        return self.store.available(a.key, a.spec.limit_usd, a.spec.window)

    @staticmethod
    def worst_cost(ctx: RequestContext, backend: BackendView) -> float:
        return cost_usd(
            backend.config.price, ctx.prompt_bound_on(backend.name), ctx.request.max_tokens
        )

    def filter(self, ctx: RequestContext, backend: BackendView) -> str | None:
        cost = self.worst_cost(ctx, backend)
        for a in self._applicable(ctx.request.tenant):
            if cost > (left := self._left(a)):
                return f"{a.label}: ${max(left, 0):.6f} left, request may cost ${cost:.6f}"
        return None

    def constraints(
        self, batch: Sequence[RequestContext], backends: Sequence[BackendView]
    ) -> list[Constraint]:
        out: list[Constraint] = []
        seen: dict[str, tuple[_Applicable, dict[tuple[int, str], float]]] = {}
        for i, ctx in enumerate(batch):
            for a in self._applicable(ctx.request.tenant):
                _, weights = seen.setdefault(a.key, (a, {}))
                for b in backends:
                    weights[(i, b.name)] = self.worst_cost(ctx, b)
        for a, weights in seen.values():
            out.append(SideLimit(a.label, weights, max(0.0, self._left(a))))
        return out

    def reserve(self, ctx: RequestContext, backend: BackendView) -> Holds | None:
        applicable = self._applicable(ctx.request.tenant)
        if not applicable:
            return None
        cost = self.worst_cost(ctx, backend)
        held: list[Account] = []
        for a in applicable:
            hold = self.store.reserve(a.key, cost, a.spec.limit_usd, a.spec.window)
            if hold is None:  # the filter checked it; only a concurrent spend gets here
                Holds(self.store, held).release()
                raise ResourceExhausted(f"{a.label}: exhausted by concurrent requests")
            held.append(Account(hold, a.label, _cost))
        return Holds(self.store, held)


def _cost(usage: Usage) -> float:
    return usage.cost_usd


def create(name: str, parameters: Mapping[str, Any], handle: PluginHandle) -> Budget:
    """Keeps spend in the handle's budget store, which outlives config reloads."""
    return Budget(name, parse(BudgetParams, parameters), handle.budget_store)
