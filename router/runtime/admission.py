"""Admission: reserve at placement, then settle or release exactly once.

The live router (router/runtime/context.py) and the what-if replay (router/tools/replay.py) both
admit through
`admit()`: each Reserver step of the request's profile reserves on the chosen backend's view, in
order; any failure (a RouterError refusal or a plugin bug) releases what the earlier steps held
and propagates. The returned `Admission` counts the generation in its backend's `admitted`
(in-flight) count until it is settled (finished: charge the real usage) or released (failed or
cancelled before its first token: give everything back); whichever comes first wins, later calls
do nothing.
"""

from __future__ import annotations

from typing import Protocol

from router.core.framework import BackendView, RequestContext, Reservation, Reserver
from router.core.types import Usage
from router.placement.pipeline import Profile


class InFlight(Protocol):
    """What an admission counts itself in: a backend, live or simulated."""

    admitted: int  # generations admitted here and not yet settled or released


class Admission:
    """A generation admitted to a backend: its in-flight count and its reservations."""

    def __init__(self, backend: InFlight, held: list[Reservation]) -> None:
        self._backend = backend
        self._held: list[Reservation] | None = held
        backend.admitted += 1

    def settle(self, usage: Usage) -> None:
        """The generation finished: charge what it really used."""
        for reservation in self._take():
            reservation.settle(usage)

    def release(self) -> None:
        """The generation failed or was cancelled: give everything back."""
        for reservation in self._take():
            reservation.release()

    def _take(self) -> list[Reservation]:
        held, self._held = self._held, None
        if held is None:
            return []
        self._backend.admitted -= 1
        return held


def admit(profile: Profile, ctx: RequestContext, view: BackendView, backend: InFlight) -> Admission:
    """Reserves budget and rate for `ctx` on `view` with each Reserver of `profile`; on any
    failure releases what was held and re-raises."""
    held: list[Reservation] = []
    try:
        for step in profile.of(Reserver):
            if (reservation := step.policy.reserve(ctx, view)) is not None:
                held.append(reservation)
    except BaseException:  # a refusal, or a plugin bug: nothing stays held either way
        for reservation in held:
            reservation.release()
        raise
    return Admission(backend, held)
