"""capacity: concurrency slots and tokens-per-minute limits per backend, as batch constraints.

    free_slots(b) = slots(b) - in_flight(b)            (in_flight counts queued requests too)
    sum of batch requests placed on b          <= free_slots(b)
    sum of (prompt + max_tokens) placed on b   <= tokens_per_minute(b) - tokens admitted in the
                                                  last 60 s
`prompt` is the bound (b's exact count where it has a tokenizer, else an upper bound: UTF-8 bytes
+ template allowance, router/estimates.py), so a limit is never exceeded; slots are counts.
Filter (resource): a backend with no free slot or no token allowance left is excluded.
Admission records each request's prompt + max_tokens against the backend's minute window.
Parameters:
    slots ({}): backend name -> concurrent requests; default: what the backend itself accepts
        (llama.cpp: replicas + max_queue; unlimited when the backend has no limit).
    tokens_per_minute ({}): backend name -> token limit per rolling minute; default: none.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import Field, PositiveInt

from policies.params import Params, parse
from router.framework import BackendView, Capacity, Constraint, RequestContext, SideLimit
from router.types import Usage

WINDOW_S = 60.0


class CapacityParams(Params):
    slots: dict[str, PositiveInt] = Field(default_factory=dict)
    tokens_per_minute: dict[str, PositiveInt] = Field(default_factory=dict)


class TokenWindow:
    """Tokens admitted per backend over the last WINDOW_S seconds."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._events: dict[str, deque[tuple[float, int]]] = {}
        self._totals: dict[str, int] = {}

    def used(self, backend: str) -> int:
        events = self._events.get(backend)
        if not events:
            return 0
        horizon = self._clock() - WINDOW_S
        while events and events[0][0] < horizon:
            self._totals[backend] -= events.popleft()[1]
        return self._totals[backend]

    def add(self, backend: str, tokens: int) -> None:
        self._events.setdefault(backend, deque()).append((self._clock(), tokens))
        self._totals[backend] = self._totals.get(backend, 0) + tokens


class _Held:
    """Admitted tokens stay counted for the window whatever happens to the request."""

    def settle(self, usage: Usage) -> None:
        pass

    def release(self) -> None:
        pass


class CapacityPolicy:
    resource = True

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
        need = ctx.prompt_bound_on(backend.name) + ctx.request.max_tokens
        if left is not None and need > left:
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


def create(
    name: str,
    parameters: Mapping[str, Any],
    clock: Callable[[], float] | None = None,
    window: TokenWindow | None = None,
) -> CapacityPolicy:
    """`window` (shared across config reloads) or a new one on `clock` (default: monotonic)."""
    if window is None:
        window = TokenWindow(clock or time.monotonic)
    return CapacityPolicy(name, parse(CapacityParams, parameters), window)
