"""capacity: concurrency slots and tokens-per-minute limits per backend, as batch constraints.

    free_slots(b) = slots(b) - in_flight(b)            (in_flight counts queued requests too)
    sum of batch requests placed on b          <= free_slots(b)
    sum of (prompt + max_tokens) placed on b   <= tokens_per_minute(b) - tokens admitted in the
                                                  last 60 s
`prompt` is the bound (b's exact count where it has a tokenizer, else an upper bound: UTF-8 bytes
+ template allowance, router/core/estimates.py), so a limit is never exceeded; slots are counts.
Filter (resource): a backend with no free slot or no token allowance left is excluded.
Admission records each request's prompt + max_tokens against the backend's minute window.
Parameters:
    slots ({}): backend name -> concurrent requests; default: what the backend itself accepts
        (llama.cpp: replicas + max_queue; unlimited when the backend has no limit).
    tokens_per_minute ({}): backend name -> token limit per rolling minute; default: none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import Field, PositiveInt

from policies.params import Params, parse
from router.core.framework import BackendView, Capacity, Constraint, RequestContext, SideLimit
from router.core.handle import PluginHandle
from router.core.token_window import TokenWindow
from router.core.types import Usage


class CapacityParams(Params):
    slots: dict[str, PositiveInt] = Field(default_factory=dict)
    tokens_per_minute: dict[str, PositiveInt] = Field(default_factory=dict)


class _Held:
    """Admitted tokens stay counted for the window whatever happens to the request."""

    def settle(self, usage: Usage) -> None:
        pass

    def release(self) -> None:
        pass


class CapacityPolicy:
    resource = True
    backend_parameters = ("slots", "tokens_per_minute")  # maps keyed by backend name

    def __init__(self, name: str, params: CapacityParams, window: TokenWindow) -> None:
        self.name = name
        self.params = params
        self._window = window

    def free_slots(self, backend: BackendView) -> int | None:
        slots = self.params.slots.get(backend.name, backend.limit)
        if not slots:
            return None
        return max(0, slots - backend.in_flight)

    def tokens_left(self, backend: BackendView) -> int | None:
        tpm = self.params.tokens_per_minute.get(backend.name)
        return None if tpm is None else max(0, tpm - self._window.used(backend.name))

    def filter(self, ctx: RequestContext, backend: BackendView) -> str | None:
        if self.free_slots(backend) == 0:
            slots = self.params.slots.get(backend.name, backend.limit)
            return f"all {slots} slots in use"
        left = self.tokens_left(backend)
        if left is None:
            return None
        need = ctx.prompt_bound_on(backend.name) + ctx.request.max_tokens
        if need > left:
            return f"needs {need} tokens, {left} left of its tokens-per-minute limit"
        return None

    def constraints(
        self, batch: Sequence[RequestContext], backends: Sequence[BackendView]
    ) -> list[Constraint]:
        out: list[Constraint] = []
        for b in backends:
            if (free := self.free_slots(b)) is not None:
                out.append(Capacity(b.name, free))
            if (left := self.tokens_left(b)) is not None:
                weights = {
                    (i, b.name): float(c.prompt_bound_on(b.name) + c.request.max_tokens)
                    for i, c in enumerate(batch)
                }
                out.append(SideLimit(f"capacity: tokens per minute on {b.name}", weights, left))
        return out

    def reserve(self, ctx: RequestContext, backend: BackendView) -> _Held | None:
        if backend.name not in self.params.tokens_per_minute:
            return None
        self._window.add(backend.name, ctx.prompt_bound_on(backend.name) + ctx.request.max_tokens)
        return _Held()


def create(name: str, parameters: Mapping[str, Any], handle: PluginHandle) -> CapacityPolicy:
    """Counts tokens in the handle's token window, which outlives config reloads."""
    return CapacityPolicy(name, parse(CapacityParams, parameters), handle.token_window)
