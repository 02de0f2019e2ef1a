"""Privacy binds every request: detection under every profile and claim, guards, no opt-out."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from router.api import router_pb2 as pb
from router.config import parse_config
from router.core.framework import BackendView, Filter, Preparer, RequestContext
from router.core.registry import default_registry
from router.placement.pipeline import PolicyPipeline
from tests.conftest import request
from tests.fakes.fake_upstream import FakeUpstream

# A valid card number and an Anthropic-style key: RESTRICTED content twice over.
SECRET = "Charge 4111 1111 1111 1111 with key sk-ant-api03-" + "Ab3dE6gH9jK2mN5pQ8sT1vW4yZ7" * 2
EMAIL = "Reply to jane.doe@example.com about the invoice"


def fleet(upstream: FakeUpstream, *, privacy: bool = True, **profiles: Any) -> dict[str, Any]:
    """A costly self-hosted backend and a free third-party API (the fake upstream); profiles
    `default` (with the privacy policy, named "pii"), `cheap` (cost only), `bare` (none)."""
    config: dict[str, Any] = {
        "backends": {
            "home": {
                "type": "scripted",
                "model": "m",
                "tier": "cloud_gpu",
                "price": {"input_per_mtok": 50.0, "output_per_mtok": 50.0},
            },
            "api": {
                "type": "openai",
                "model": "m",
                "tier": "remote_api",
                "base_url": upstream.base_url,
            },
        },
        "policies": {"pii": {"type": "privacy"}, "cost": {"type": "cost"}},
        "profiles": {
            "default": {"policies": [{"policy": "pii"}, {"policy": "cost"}]},
            "cheap": {"policies": [{"policy": "cost"}]},
            "bare": {"policies": []},
            **profiles,
        },
    }
    if not privacy:
        del config["policies"]["pii"]
        config["profiles"]["default"]["policies"] = [{"policy": "cost"}]
    return config


def generations(upstream: FakeUpstream) -> int:
    """Chat completions the fake third-party API received (health probes are not counted)."""
    return sum(r.path.endswith("/chat/completions") for r in upstream.requests)


async def drain(call: Any) -> list[pb.RouteDecision]:
    return [m.decision async for m in call if m.HasField("decision")]


@pytest.mark.parametrize("privacy", [True, False], ids=["privacy-configured", "no-privacy"])
@pytest.mark.parametrize("profile", ["", "cheap", "bare"])
@pytest.mark.parametrize("claimed", [pb.PUBLIC, pb.UNSPECIFIED])
async def test_secrets_never_reach_the_third_party_api(
    start_server, upstream, privacy, profile, claimed
):
    """A card number and an sk-ant- key, claimed PUBLIC or not, under a profile with or without
    the privacy policy (or with none configured), never land on the third-party backend."""
    srv = await start_server(fleet(upstream, privacy=privacy))
    msg = request(SECRET, privacy=claimed, profile=profile, max_tokens=4)
    (decision,) = await drain(srv.stub.Generate(msg))
    assert decision.backend == "home" and decision.privacy == pb.RESTRICTED
    assert {"card", "secret"} <= set(decision.detected)
    rejected = {c.backend: c for c in decision.candidates if not c.feasible}
    assert rejected["api"].rejected_by in ("pii", "privacy")
    assert generations(upstream) == 0
    # The same route with harmless text does take the free API: the fleet can reach it.
    (harmless,) = await drain(srv.stub.Generate(request("hi", privacy=claimed, profile=profile)))
    assert harmless.backend == "api" and generations(upstream) == 1


@pytest.mark.parametrize("profile", ["", "cheap", "bare"])
async def test_detection_runs_under_every_profile(start_server, upstream, profile):
    """An e-mail address raises the class to CONFIDENTIAL under every profile, and the
    configured policy's class rules keep it off the third-party API, naming that policy."""
    srv = await start_server(fleet(upstream))
    d = await srv.stub.Route(request(EMAIL, profile=profile))
    assert (d.privacy, tuple(d.detected), d.backend) == (pb.CONFIDENTIAL, ("email",), "home")
    api = next(c for c in d.candidates if c.backend == "api")
    assert api.rejected_by == "pii"
    assert api.reason.startswith("CONFIDENTIAL request (detected: email) may not use a third_party")


async def test_a_claim_above_the_content_is_kept(start_server, upstream):
    """A client claiming RESTRICTED on text that detection rates lower stays RESTRICTED, and the
    decision still reports what was detected."""
    srv = await start_server(fleet(upstream))
    for profile in ("", "cheap"):
        d = await srv.stub.Route(request(EMAIL, privacy=pb.RESTRICTED, profile=profile))
        assert (d.privacy, tuple(d.detected), d.backend) == (pb.RESTRICTED, ("email",), "home")
        d = await srv.stub.Route(request("hi", privacy=pb.RESTRICTED, profile=profile))
        assert (d.privacy, tuple(d.detected), d.backend) == (pb.RESTRICTED, (), "home")


async def test_no_feasible_backend_names_the_privacy_policy(start_server, upstream):
    """With only the third-party API, a CONFIDENTIAL-by-content request under a profile without
    privacy is refused, naming the configured privacy policy and its reason."""
    config = fleet(upstream)
    del config["backends"]["home"]
    srv = await start_server(config)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await srv.stub.Route(request(EMAIL, privacy=pb.PUBLIC, profile="cheap"))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "api excluded by pii: CONFIDENTIAL request (detected: email)" in err.value.details()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await srv.stub.Route(request(SECRET, privacy=pb.PUBLIC, profile="bare"))
    assert "api excluded by privacy: RESTRICTED request (detected: card, secret) may never" in (
        err.value.details()
    )


class Counting:
    """A guard (binding = True) from a plugin: counts its prepare and filter calls."""

    binding = True

    def __init__(self, name: str, parameters: Any) -> None:
        self.name = name
        self.prepared = self.filtered = 0

    def prepare(self, ctx: RequestContext) -> RequestContext:
        self.prepared += 1
        return ctx

    def filter(self, ctx: RequestContext, backend: BackendView) -> str | None:
        self.filtered += 1
        return "never" if backend.name == "api" else None


def pipeline_with_guard() -> PolicyPipeline:
    registry = default_registry()
    registry.register("counting", Counting)
    config = parse_config(
        "backends:\n  home: {type: scripted, model: m, tier: cloud_gpu}\n"
        "  api: {type: scripted, model: m, tier: remote_api}\n"
        "policies:\n  guard: {type: counting}\n  cost: {type: cost}\n"
        "profiles:\n  default: {policies: [{policy: guard}, {policy: cost}]}\n"
        "  other: {policies: [{policy: cost}]}\n",
        "<test>",
    )
    return PolicyPipeline(config, registry)


@pytest.mark.parametrize("profile", ["default", "other"])
def test_any_guard_binds_every_profile_once(profile):
    """A policy with binding = True runs its prepare and filter for every request under every
    profile, exactly once even where the profile lists it; no type name is involved."""
    from tests.conftest import backend_view, context

    pipeline = pipeline_with_guard()
    guard = pipeline.policies["guard"]
    views = [backend_view("home", tier="cloud_gpu"), backend_view("api", tier="remote_api")]
    ctx = pipeline.prepare(context(profile=profile))
    by_name = {c.backend: c for c in pipeline.evaluate(ctx, views)}
    assert (guard.prepared, guard.filtered) == (1, 2)
    assert by_name["api"].rejected_by == "guard" and by_name["home"].feasible
    profile_steps = pipeline.profiles[profile]
    assert [s.name for s in profile_steps.of(Preparer)] == ["guard"]
    filters = [s.name for s in profile_steps.of(Filter)]
    assert filters == ["guard", "cost"]  # the guard first, and once


def test_default_detection_keeps_harmless_requests_unspecified():
    """Without a privacy policy the built-in detectors still raise the class of sensitive
    requests, and leave others as they came."""
    from router.core.types import Privacy
    from tests.conftest import context

    config = parse_config(
        "backends:\n  home: {type: scripted, model: m}\n"
        "policies:\n  cost: {type: cost}\n"
        "profiles:\n  default: {policies: [{policy: cost}]}\n",
        "<test>",
    )
    pipeline = PolicyPipeline(config, default_registry())
    harmless = pipeline.prepare(context("hello"))
    assert (harmless.privacy, harmless.detected) == (Privacy.UNSPECIFIED, ())
    raised = pipeline.prepare(context(SECRET, privacy=Privacy.PUBLIC))
    assert (raised.privacy, raised.detected) == (Privacy.RESTRICTED, ("card", "secret"))
