"""Backend health: active probes, passive outlier ejection (Envoy's defaults) and 429 cool-downs.

- Probes: a background collector calls each backend's `probe()` every `probe_interval_s`; after
  `unhealthy_after` consecutive failures the backend is unhealthy until a probe succeeds.
- Outlier ejection: `eject_after` (5) consecutive failed requests eject a backend for
  `base_ejection_s` (30 s) x the number of times it has been ejected, capped at `max_ejection_s`
  (300 s). A success after an ejection lowers that multiplier by one.
- Cool-down: a 429 or 503 with Retry-After keeps the backend out of placement for that long, at
  most `max_ejection_s` (also for `inf`); NaN, zero or a negative value starts no cool-down.
- The last usable backend of a group is never taken out (neither ejected nor cooled down). The
  groups are, per privacy class, the backends the privacy rules let serve it (the engine passes
  `PolicyPipeline.class_groups`, which honours the configured trust and regions); without them, all
  backends and the trusted ones (trust edge or self_hosted, from `config.effective_trust`).
  Otherwise every CONFIDENTIAL or RESTRICTED request would fail while other backends remain.
  The failure still counts, so the backend is taken out once another one of its groups is usable.
The scheduler reads `reason(name)`: empty when the backend is usable, else why not.
With shared state (router/state/shared_health.py), an ejection or cool-down here is published
for every router, and one another router published takes the backend out here too (unless it
is the last usable one of a group, by this router's own evidence).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from router.config import HealthConfig

TRUSTED = frozenset({"edge", "self_hosted"})


@dataclass(slots=True)
class _State:
    trust: str = "third_party"
    probe_failures: int = 0
    probe_error: str = ""
    failures: int = 0  # consecutive failed requests
    last_failure: str = ""
    ejections: int = 0
    ejections_total: int = 0  # every ejection so far, never forgiven (for metrics)
    ejected_until: float = 0.0
    cooldown_until: float = 0.0


class HealthTracker:
    """Health of a fleet; see the module docstring.

    `backends`: the backend names, or a mapping of names to backends, whose
    `config.effective_trust` then decides which ones count as trusted (names alone: none).
    """

    def __init__(
        self,
        backends: Iterable[str] | Mapping[str, Any],
        config: HealthConfig,
        clock: Callable[[], float] = time.monotonic,
        groups: Iterable[Iterable[str]] | None = None,
        shared: Any = None,
    ) -> None:
        self.config = config
        self._shared = shared  # a SharedHealth, or None: this router's evidence only
        self._clock = clock
        self._groups = None if groups is None else [frozenset(g) for g in groups]
        if isinstance(backends, Mapping):
            trust = {n: str(b.config.effective_trust) for n, b in backends.items()}
        else:
            trust = dict.fromkeys(backends, "third_party")
        self._states = {name: _State(trust=t) for name, t in trust.items()}

    def reason(self, name: str) -> str:
        """Why `name` may not be used now ("" when it may)."""
        if local := self._local_reason(name):
            return local
        remote = self._shared.reason(name) if self._shared is not None else ""
        if remote and self._may_take_out(name, local_only=True):
            return remote
        return ""

    def _local_reason(self, name: str) -> str:
        s, now = self._states[name], self._clock()
        if s.probe_failures >= self.config.unhealthy_after:
            return f"unhealthy: {s.probe_failures} failed health probes ({s.probe_error})"
        if s.ejected_until > now:
            return (
                f"ejected for {s.ejected_until - now:.0f} s more after {self.config.eject_after} "
                f"consecutive failures ({s.last_failure})"
            )
        if s.cooldown_until > now:
            left = s.cooldown_until - now
            return f"cooling down {left:.0f} s more (the backend asked to retry later)"
        return ""

    def status(self, name: str) -> str:
        """healthy, unhealthy or ejected (a cool-down counts as ejected)."""
        s, now = self._states[name], self._clock()
        if s.probe_failures >= self.config.unhealthy_after:
            return "unhealthy"
        if s.ejected_until > now or s.cooldown_until > now or self.reason(name):
            return "ejected"
        return "healthy"

    def ejections_total(self, name: str) -> int:
        """How many times `name` has been ejected (a config change of the backend resets it)."""
        return self._states[name].ejections_total

    def inherit(self, old: HealthTracker, names: Iterable[str]) -> None:
        """Carries over the state of backends that survived a config reload unchanged."""
        for name in names:
            if name in old._states:
                self._states[name] = old._states[name]

    def probe_ok(self, name: str) -> None:
        self._states[name].probe_failures = 0

    def probe_failed(self, name: str, error: str) -> None:
        s = self._states[name]
        s.probe_failures += 1
        s.probe_error = error

    def success(self, name: str) -> None:
        """Records a served request: clears the failure streak, forgives one past ejection."""
        s = self._states[name]
        if s.ejections and s.ejected_until <= self._clock():
            s.ejections -= 1
        s.failures = 0

    def failure(self, name: str, error: str, retry_after_s: float | None = None) -> None:
        """Records a failed request; may eject the backend or start a cool-down (both capped)."""
        s, now = self._states[name], self._clock()
        s.failures += 1
        s.last_failure = error
        cooldown = self.cooldown_s(retry_after_s)
        if cooldown and self._may_take_out(name):
            s.cooldown_until = max(s.cooldown_until, now + cooldown)
            self._publish(name, cooldown, f"cooling down (asked to retry later: {error})")
        if s.failures >= self.config.eject_after and s.ejected_until <= now:
            if not self._may_take_out(name):
                return  # the streak goes on: ejected once another backend is usable
            s.ejections += 1
            s.ejections_total += 1
            duration = min(self.config.base_ejection_s * s.ejections, self.config.max_ejection_s)
            s.ejected_until = now + duration
            s.failures = 0
            self._publish(
                name,
                duration,
                f"ejected after {self.config.eject_after} consecutive failures ({error})",
            )

    def _publish(self, name: str, duration_s: float, reason: str) -> None:
        if self._shared is not None:
            self._shared.publish(name, duration_s, reason)

    def cooldown_s(self, retry_after_s: float | None) -> float:
        """The cool-down a Retry-After of `retry_after_s` earns: 0 for NaN or <= 0, else capped."""
        if retry_after_s is None or math.isnan(retry_after_s) or retry_after_s <= 0:
            return 0.0
        return min(float(retry_after_s), self.config.max_ejection_s)

    def _may_take_out(self, name: str, local_only: bool = False) -> bool:
        """False when `name` is the last usable backend of one of the groups it belongs to
        (`local_only`: usable by this router's own evidence)."""
        usable = self._local_reason if local_only else self.reason
        others = {n for n in self._states if n != name and not usable(n)}
        if not others:
            return False
        if self._groups is not None:
            return all(others & group for group in self._groups if name in group)
        if self._states[name].trust in TRUSTED:
            return any(self._states[n].trust in TRUSTED for n in others)
        return True
