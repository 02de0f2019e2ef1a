"""rate-limit: per-tenant (and per-API-key) request and token rates per time window.

    requests(t)        = requests admitted for tenant t in the current window (held or done)
    tokens(t)          = their tokens: worst case while running, the real count once settled
    worst_tokens(r, b) = prompt_bound(r, b) + max_tokens(r)
    excluded when requests(t) + 1 > requests_per_minute, or
             when tokens(t) + worst_tokens(r, b) > tokens_per_minute   (for every limit of t)
    batch: a tenant's placed requests (and their worst tokens) fit what is left
Admission takes one request and worst_tokens; the end of the stream replaces the tokens by the
real prompt + completion count (a stream cut short: what it produced); a failure or a cancel
before the first token gives both back. Windows are fixed and aligned to the epoch, like
budgets, and kept in the handle's budget store (the same reserve / settle / release store, so a
shared store makes them exact across processes). When a limit is why nothing is feasible, the
request gets RESOURCE_EXHAUSTED naming it (HTTP: 429).
Parameters:
    limits ([]): list of {tenant, key, requests_per_minute, tokens_per_minute, window};
        tenant (default "*") names one tenant, "*" gives every tenant its own limit; key (off
        by default) makes it a limit per API key: a key id (the 12 hex digits after `trk_`)
        limits that key, "*" gives every key of the tenant its own limit — a key limit only
        applies to calls authenticated with a key (`server.tenant_keys_file`); either rate may
        be left out; window (default 1m) is seconds or a duration like "10s", "1m", "1h" — the
        rates are per that window.
Example:
    limits:
      - {tenant: "*", requests_per_minute: 60, tokens_per_minute: 100000}
      - {tenant: acme, requests_per_minute: 600}
      - {tenant: acme, key: "*", requests_per_minute: 100}   # each of acme's keys
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import Field, field_validator

from policies.params import Params, duration, duration_text, parse
from router.core.budgets import Account, BudgetStore, Holds
from router.core.errors import ResourceExhausted
from router.core.framework import BackendView, Constraint, RequestContext, SideLimit
from router.core.handle import PluginHandle
from router.core.types import Request, Usage

_KEY_RE = re.compile(r"\*|[0-9a-f]{12}")


class LimitSpec(Params):
    tenant: str = Field("*", min_length=1)
    key: str | None = Field(None, description='"*" or a key id: a limit per API key')
    requests_per_minute: int | None = Field(None, ge=0)
    tokens_per_minute: int | None = Field(None, ge=0)
    window: float = Field(60.0, description="seconds")

    _window = field_validator("window", mode="before")(duration)

    @field_validator("key")
    @classmethod
    def _key(cls, value: str | None) -> str | None:
        if value is not None and not _KEY_RE.fullmatch(value):
            raise ValueError('must be "*" or a key id (the 12 hex digits after trk_)')
        return value

    def covers(self, request: Request) -> bool:
        """Whether this limit counts `request` (its tenant, and its key for a key limit)."""
        if self.tenant not in (request.tenant, "*"):
            return False
        return self.key is None or (bool(request.api_key) and self.key in (request.api_key, "*"))


class RateLimitParams(Params):
    limits: list[LimitSpec] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Account:
    label: str  # e.g. "rate limit acme: requests per 1m"
    key: str
    limit: float
    window: float
    tokens: bool  # counts tokens (else requests)


class RateLimit:
    resource = True

    def __init__(self, name: str, params: RateLimitParams, store: BudgetStore) -> None:
        self.name = name
        self.params = params
        self.store = store

    def _accounts(self, request: Request) -> list[_Account]:
        out = []
        for i, spec in enumerate(self.params.limits):
            if not spec.covers(request):
                continue
            window = duration_text(spec.window)
            who = request.tenant
            if spec.key is not None:
                who = f"{who} key {request.api_key}"
            for tokens, limit in (
                (False, spec.requests_per_minute),
                (True, spec.tokens_per_minute),
            ):
                if limit is not None:
                    what = "tokens" if tokens else "requests"
                    label = f"rate limit {who}: {what} per {window}"
                    key = f"{self.name}:{i}:{who}:{what}:{window}"
                    out.append(_Account(label, key, float(limit), spec.window, tokens))
        return out

    @staticmethod
    def _amount(account: _Account, ctx: RequestContext, backend: BackendView) -> float:
        if not account.tokens:
            return 1.0
        return float(ctx.prompt_bound_on(backend.name) + ctx.request.max_tokens)

    def _left(self, a: _Account) -> float:
        return self.store.available(a.key, a.limit, a.window)

    def filter(self, ctx: RequestContext, backend: BackendView) -> str | None:
        for a in self._accounts(ctx.request):
            amount = self._amount(a, ctx, backend)
            if amount > (left := self._left(a)):
                return f"{a.label}: {max(left, 0):g} left, the request needs {amount:g}"
        return None

    def constraints(
        self, batch: Sequence[RequestContext], backends: Sequence[BackendView]
    ) -> list[Constraint]:
        seen: dict[str, tuple[_Account, dict[tuple[int, str], float]]] = {}
        for i, ctx in enumerate(batch):
            for a in self._accounts(ctx.request):
                _, weights = seen.setdefault(a.key, (a, {}))
                for b in backends:
                    weights[(i, b.name)] = self._amount(a, ctx, b)
        return [SideLimit(a.label, w, max(0.0, self._left(a))) for a, w in seen.values()]

    def reserve(self, ctx: RequestContext, backend: BackendView) -> Holds | None:
        accounts = self._accounts(ctx.request)
        if not accounts:
            return None
        held: list[Account] = []
        for a in accounts:
            hold = self.store.reserve(a.key, self._amount(a, ctx, backend), a.limit, a.window)
            if hold is None:  # the filter checked it; only a concurrent request gets here
                Holds(self.store, held).release()
                raise ResourceExhausted(f"{a.label}: exhausted by concurrent requests")
            held.append(Account(hold, a.label, _tokens if a.tokens else _one))
        return Holds(self.store, held)


def _tokens(usage: Usage) -> float:
    return float(usage.prompt_tokens + usage.completion_tokens)


def _one(usage: Usage) -> float:
    return 1.0


def create(name: str, parameters: Mapping[str, Any], handle: PluginHandle) -> RateLimit:
    """Keeps its windows in the handle's rate store, which outlives config reloads."""
    return RateLimit(name, parse(RateLimitParams, parameters), handle.rate_store)
