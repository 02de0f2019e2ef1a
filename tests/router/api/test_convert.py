"""Request translation: defaults are filled in and bad fields are named."""

from __future__ import annotations

import dataclasses

import pytest

from router.api import router_pb2 as pb
from router.api.convert import MAX_FEATURES, TIER_TO_PB, decision_to_pb, request_from_pb
from router.config import load_config
from router.core.errors import InvalidArgument
from router.core.types import Candidate, Decision, Privacy, Tier

CONFIG = load_config(None).config


def test_defaults_fill_unset_fields():
    """Unset max_tokens, temperature, tenant and request_id take the configured defaults."""
    req = request_from_pb(
        pb.GenerateRequest(messages=[pb.Message(role="user", content="hi")]), CONFIG
    )
    assert req.max_tokens == 256 and req.temperature == 0.7 and req.tenant == "default"
    assert len(req.request_id) == 32 and req.privacy is Privacy.UNSPECIFIED
    assert req.max_cost_usd is None


def test_explicit_zero_temperature_and_cost_cap_are_kept():
    """temperature 0 and max_cost_usd 0 are honoured, not mistaken for 'unset'."""
    msg = pb.GenerateRequest(
        messages=[pb.Message(role="user", content="hi")],
        temperature=0.0,
        max_cost_usd=0.0,
        privacy=pb.RESTRICTED,
    )
    req = request_from_pb(msg, CONFIG)
    assert req.temperature == 0.0 and req.max_cost_usd == 0.0 and req.privacy is Privacy.RESTRICTED


@pytest.mark.parametrize(
    ("msg", "field"),
    [
        (
            pb.GenerateRequest(privacy=99, messages=[pb.Message(role="user", content="x")]),
            "privacy",
        ),
        (pb.GenerateRequest(messages=[pb.Message(role="user", content="x")] * 2000), "messages"),
        (
            pb.GenerateRequest(
                messages=[pb.Message(role="user", content="x"), pb.Message(role="")]
            ),
            "messages[1].role",
        ),
        (
            pb.GenerateRequest(
                messages=[pb.Message(role="user", content="x")], temperature=float("nan")
            ),
            "temperature",
        ),
    ],
)
def test_bad_fields_are_named(msg, field):
    """Each invalid field raises InvalidArgument whose field is the proto field path."""
    with pytest.raises(InvalidArgument) as err:
        request_from_pb(msg, CONFIG)
    assert err.value.field == field


def msg(**fields) -> pb.GenerateRequest:
    """A valid one-message request with `fields` set."""
    return pb.GenerateRequest(messages=[pb.Message(role="user", content="x")], **fields)


@pytest.mark.parametrize("name", ["tenant", "request_id", "model", "profile"])
def test_identifiers_are_bounded_and_printable(name):
    """tenant, request_id, model and profile over max_id_chars or with a control character are
    refused naming the field; at the limit, with spaces or any printable unicode, they pass."""
    limit = CONFIG.limits.max_id_chars
    request_from_pb(msg(**{name: "a" * limit}), CONFIG)
    request_from_pb(msg(**{name: "Ünïcødé team 東京 🚀"}), CONFIG)
    for bad in ["a" * (limit + 1), "acme\n", "ac\x00me", "acme\x1b[31m", "a\u202eb", "a\u2028b"]:
        with pytest.raises(InvalidArgument) as err:
            request_from_pb(msg(**{name: bad}), CONFIG)
        assert err.value.field == name
        assert len(str(err.value)) < 200


def test_metadata_is_bounded():
    """Too many metadata entries, a long or non-printable key, or a long value are refused."""
    limits = CONFIG.limits
    ok = {
        f"k{i}": "v" * limits.max_metadata_value_chars for i in range(limits.max_metadata_entries)
    }
    assert request_from_pb(msg(metadata=ok), CONFIG).metadata == ok
    cases = [
        ({f"k{i}": "v" for i in range(limits.max_metadata_entries + 1)}, "metadata"),
        ({"k" * (limits.max_metadata_key_chars + 1): "v"}, "metadata['kkkk"),
        ({"trace\nid": "v"}, "metadata['trace\\nid']"),
        ({"trace": "v" * (limits.max_metadata_value_chars + 1)}, "metadata['trace']"),
    ]
    for metadata, field in cases:
        with pytest.raises(InvalidArgument) as err:
            request_from_pb(msg(metadata=metadata), CONFIG)
        assert err.value.field.startswith(field)
        assert len(str(err.value)) < 300


def test_limits_come_from_the_config():
    """A config with tighter limits makes request_from_pb refuse what the default accepts."""
    tight = CONFIG.model_copy(
        update={"limits": CONFIG.limits.model_copy(update={"max_id_chars": 4})}
    )
    request_from_pb(msg(tenant="acme"), tight)
    with pytest.raises(InvalidArgument, match="tenant: 5 characters exceed the limit of 4"):
        request_from_pb(msg(tenant="acmes"), tight)


def test_features_are_bounded_and_merged():
    """Repeated features are merged; more than MAX_FEATURES entries are refused."""
    req = request_from_pb(msg(features=["tools", "streaming", "tools"]), CONFIG)
    assert req.features == ("tools", "streaming")
    with pytest.raises(InvalidArgument) as err:
        request_from_pb(msg(features=["streaming"] * (MAX_FEATURES + 1)), CONFIG)
    assert err.value.field == "features"


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda big: msg(features=[big]), "features[0]"),
        (
            lambda big: pb.GenerateRequest(messages=[pb.Message(role=big, content="x")]),
            "messages[0].role",
        ),
    ],
)
def test_errors_quote_client_text_briefly(build, field):
    """A megabyte of client text in a bad field yields a short error that still names the field."""
    with pytest.raises(InvalidArgument) as err:
        request_from_pb(build("x" * 1_000_000), CONFIG)
    assert err.value.field == field
    assert len(str(err.value)) < 200 and "1000000 characters" in str(err.value)


def test_every_field_of_a_decision_reaches_the_message():
    """decision_to_pb drops nothing: every Decision field the proto has, and every field of every
    candidate (empty or not, whether feasible or rejected), is in the RouteDecision."""
    odd = Candidate("a", True, {"cost": 0.5}, 0.5, "cap", "kept anyway", 1e-5, 12.5, 99.0)
    rejected = Candidate("b", False, {"latency": 0.1}, 0.0, "privacy", "no", 0.0, 3.0, 4.0)
    plain = Candidate("c", True, {}, 0.0, "", "", 0.0, 0.0, 0.0)
    d = Decision(
        "r1",
        "a",
        "m",
        Tier.CLOUD_GPU,
        "default",
        Privacy.CONFIDENTIAL,
        42,
        1e-5,
        12.5,
        "single",
        77,
        (odd, rejected, plain),
        3,
        9,
        ("email",),
        "v1",
    )
    msg = decision_to_pb(d)
    for f in dataclasses.fields(Decision):
        if f.name in ("prompt_tokens", "candidates", "tier", "privacy"):
            continue  # prompt_tokens has no proto field; the rest are checked below
        got = getattr(msg, f.name)
        assert (tuple(got) if f.name == "detected" else got) == getattr(d, f.name), f.name
    assert msg.tier == TIER_TO_PB[d.tier] and msg.privacy == int(d.privacy)
    assert len(msg.candidates) == len(d.candidates)
    for c, out in zip(d.candidates, msg.candidates, strict=True):
        for f in dataclasses.fields(Candidate):
            got = getattr(out, f.name)
            assert (dict(got) if f.name == "scores" else got) == getattr(c, f.name), f.name
