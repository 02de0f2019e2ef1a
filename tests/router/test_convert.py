"""Request translation: defaults are filled in and bad fields are named."""

from __future__ import annotations

import pytest

from router.api import router_pb2 as pb
from router.config import load_config
from router.convert import request_from_pb
from router.errors import InvalidArgument
from router.types import Privacy

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
