"""Label values stay bounded: client text (tenant, request id, model, profile) never becomes a
label; only configured names and fixed sets do."""

from __future__ import annotations

import pytest

from router.core.errors import Code
from router.observability import labels
from router.observability.labels import STATUSES, LabelDomain
from router.runtime.engine import Router
from tests.conftest import loaded
from tests.router.observability.scrape import label_values, samples
from tests.router.observability.test_metrics import ask, config

HOSTILE = "x" * 40 + '"}\n#evil'


async def hostile_requests(router: Router, n: int) -> None:
    """`n` requests whose every client-chosen field is new text."""
    for i in range(n):
        text = f"{HOSTILE}{i}"
        await router.route(ask(f"rid-{text}", f"tenant-{text}"))
        for odd in ({"profile": f"p-{text}"}, {"model": f"m-{text}"}):
            bad = ask(f"rid-{text}", f"tenant-{text}", **odd)
            with pytest.raises(Exception, match="unknown"):
                await router.route(bad)
            with pytest.raises(Exception, match="unknown"):
                [e async for e in router.generate(bad)]


async def test_client_text_creates_no_label_values():
    """Requests with new tenants, request ids, profiles and models add no series after the
    first round: the set of series is the same after 1 and after 20 such requests."""
    router = await Router.create(loaded(config()))
    try:
        await hostile_requests(router, 1)
        series = set(samples(router))
        await hostile_requests(router, 20)
        assert set(samples(router)) == series
        body, _ = router.metrics.render()
        assert b"evil" not in body and b"tenant-" not in body and b"rid-" not in body
        assert label_values(router, "profile") <= {"default", "batch", "other"}
        assert label_values(router, "backend") <= {"a", "b", "none"}
        assert label_values(router, "status") <= STATUSES
    finally:
        await router.aclose()


async def test_an_unknown_profile_counts_as_other():
    """A request naming a profile that is not configured counts under profile "other"."""
    router = await Router.create(loaded(config()))
    try:
        bad = ask(profile="nope")
        with pytest.raises(Exception, match="unknown profile"):
            await router.route(bad)
        assert label_values(router, "profile") == {"other"}
    finally:
        await router.aclose()


def test_the_label_domain_maps_anything_unconfigured_to_fixed_values():
    """Unknown backends become "other", no backend "none", and unknown statuses INTERNAL."""
    domain = LabelDomain()
    assert domain.backend("") == "none" and domain.backend("ghost") == "other"
    assert domain.tier("other") == "none"
    assert labels.status("WHATEVER") == "INTERNAL"
    assert labels.status(Code.UNAVAILABLE.value) == "UNAVAILABLE"
    assert labels.kind("route") == "route" and labels.kind("x") == "other"
    assert labels.solver("greedy") == "greedy" and labels.solver("mine") == "other"


async def test_backends_and_profiles_of_a_reload_become_label_values():
    """After a reload that adds a backend, requests on it count under its configured name."""
    router = await Router.create(loaded(config()))
    try:
        data = config()
        data["backends"] = {"c": data["backends"]["a"]}
        await router.reload(loaded(data))
        await router.route(ask())
        assert "c" in label_values(router, "backend")
    finally:
        await router.aclose()
