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
        # A reservation in a shared store (Redis) is held locally first: `confirm` before the
        # first token holds it in the shared truth too (router/state/shared_budgets.py).
        self.needs_confirm = any(getattr(r, "needs_confirm", False) for r in held)
        backend.admitted += 1

    def hold(self, reservation: Reservation) -> None:
        """Adds a reservation taken after the profile's (a fleet slot)."""
        if self._held is None:  # already ended: give it back at once
            reservation.release()
            return
        self._held.append(reservation)
        self.needs_confirm = self.needs_confirm or getattr(reservation, "needs_confirm", False)

    async def confirm(self) -> None:
        """Confirms shared holds; on a refusal (RESOURCE_EXHAUSTED naming the account) or an
        unreachable store that fails closed (UNAVAILABLE), releases everything and re-raises."""
        try:
            for reservation in self._held or ():
                if getattr(reservation, "needs_confirm", False):
                    await reservation.confirm()  # type: ignore[attr-defined]
        except BaseException:
            self.release()
            raise

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
