"""Backend health: active probes, passive outlier ejection (Envoy's defaults) and 429 cool-downs.

- Probes: a background collector calls each backend's `probe()` every `probe_interval_s`; after
  `unhealthy_after` consecutive failures the backend is unhealthy until a probe succeeds.
- Outlier ejection: `eject_after` (5) consecutive failed requests eject a backend for
  `base_ejection_s` (30 s) x the number of times it has been ejected, capped at `max_ejection_s`
  (300 s). A success after an ejection lowers that multiplier by one. The last usable backend is
  never ejected.
- Cool-down: a 429 with Retry-After keeps the backend out of placement for that long.
The scheduler reads `reason(name)`: empty when the backend is usable, else why not.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from router.config import HealthConfig


@dataclass(slots=True)
class _State:
    probe_failures: int = 0
    probe_error: str = ""
    failures: int = 0  # consecutive failed requests
    last_failure: str = ""
    ejections: int = 0
    ejected_until: float = 0.0
    cooldown_until: float = 0.0


class HealthTracker:
    def __init__(
        self,
        names: Iterable[str],
        config: HealthConfig,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._clock = clock
        self._states = {name: _State() for name in names}

    def reason(self, name: str) -> str:
        """Why `name` may not be used now ("" when it may)."""
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
        if s.ejected_until > now or s.cooldown_until > now:
            return "ejected"
        return "healthy"

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
        """Records a failed request; may eject the backend or start a cool-down."""
        s, now = self._states[name], self._clock()
        s.failures += 1
        s.last_failure = error
        if retry_after_s:
            s.cooldown_until = max(s.cooldown_until, now + retry_after_s)
        if s.failures >= self.config.eject_after and s.ejected_until <= now:
            if not any(n != name and not self.reason(n) for n in self._states):
                return  # never eject the last usable backend
            s.ejections += 1
            duration = min(self.config.base_ejection_s * s.ejections, self.config.max_ejection_s)
            s.ejected_until = now + duration
            s.failures = 0
