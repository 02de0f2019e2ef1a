"""privacy policy: class detection in prepare(), trust and region filtering, parameters."""

from __future__ import annotations

import pytest

from backends.llamacpp import LlamaCppConfig
from policies.privacy import PrivacyPolicy, create, third_party_forbidden
from router.core.framework import BackendView, RequestContext
from router.core.types import ChatMessage, Privacy, Request

P = Privacy
CONF = P.CONFIDENTIAL
CARD = "4111 1111 1111 1111"


def backend(trust: str, region: str = "local") -> BackendView:
    config = LlamaCppConfig(type="llamacpp", model="m", gguf="x", trust=trust, region=region)
    return BackendView(name=f"{trust}-{region}", config=config)


EDGE, SELF_HOSTED, THIRD_PARTY = backend("edge"), backend("self_hosted"), backend("third_party")


def ctx(*contents: str, privacy: Privacy = P.UNSPECIFIED) -> RequestContext:
    messages = tuple(ChatMessage("user", c) for c in contents) or (ChatMessage("user", "hi"),)
    return RequestContext(Request("r", "t", messages, 16, 0.0, privacy=privacy), 10, privacy)


def prepared(policy: PrivacyPolicy, *contents: str, privacy: Privacy = P.UNSPECIFIED):
    return policy.prepare(ctx(*contents, privacy=privacy))


@pytest.mark.parametrize(
    ("contents", "privacy", "detected"),
    [
        (("what is the capital of France?",), P.INTERNAL, ()),
        (("mail me at jane@example.com",), P.CONFIDENTIAL, ("email",)),
        (("call (555) 123-4567",), P.CONFIDENTIAL, ("phone",)),
        ((f"my card is {CARD}",), P.RESTRICTED, ("card",)),
        (("IBAN GB82 WEST 1234 5698 7654 32",), P.RESTRICTED, ("iban",)),
        (("AKIAIOSFODNN7EXAMPLE",), P.RESTRICTED, ("secret",)),
        (("SSN 123-45-6789",), P.RESTRICTED, ("national_id",)),
        (("jane@example.com", f"card {CARD}"), P.RESTRICTED, ("email", "card")),
    ],
)
def test_prepare_raises_the_class_from_content(contents, privacy, detected):
    """An UNSPECIFIED request takes the highest class of the detectors that fired."""
    out = prepared(create("privacy", {}), *contents)
    assert (out.privacy, out.detected) == (privacy, detected)


@pytest.mark.parametrize("claimed", [P.PUBLIC, P.INTERNAL, P.CONFIDENTIAL, P.RESTRICTED])
def test_prepare_scans_whatever_class_is_claimed(claimed):
    """A claimed class never lowers the class the content calls for: the card still counts."""
    out = prepared(create("privacy", {}), f"card {CARD}", privacy=claimed)
    assert (out.privacy, out.detected) == (P.RESTRICTED, ("card",))


@pytest.mark.parametrize(
    ("claimed", "content", "privacy", "detected"),
    [
        (P.RESTRICTED, "what is the capital of France?", P.RESTRICTED, ()),
        (P.RESTRICTED, "mail me at jane@example.com", P.RESTRICTED, ("email",)),
        (P.CONFIDENTIAL, "hello", P.CONFIDENTIAL, ()),
        (P.PUBLIC, "hello", P.PUBLIC, ()),
        (P.PUBLIC, "mail me at jane@example.com", P.CONFIDENTIAL, ("email",)),
    ],
)
def test_prepare_takes_the_higher_of_claimed_and_detected(claimed, content, privacy, detected):
    """The effective class is max(claimed, detected): a client may raise its class, not lower it."""
    out = prepared(create("privacy", {}), content, privacy=claimed)
    assert (out.privacy, out.detected) == (privacy, detected)


def test_a_claim_below_unspecified_class_is_kept_on_harmless_content():
    """unspecified_class is the class of UNSPECIFIED requests only; a PUBLIC claim stays PUBLIC."""
    policy = create("privacy", {"unspecified_class": "CONFIDENTIAL"})
    assert prepared(policy, "hello", privacy=P.PUBLIC).privacy == P.PUBLIC
    assert prepared(policy, "hello").privacy == P.CONFIDENTIAL


@pytest.mark.parametrize(
    ("parameters", "content", "privacy"),
    [
        ({"unspecified_class": "public"}, "hello", P.PUBLIC),
        ({"unspecified_class": "CONFIDENTIAL"}, "hello", P.CONFIDENTIAL),
        ({"unspecified_class": "CONFIDENTIAL", "detectors": {"email": "INTERNAL"}}, "a@b.io", CONF),
        ({"detectors": {"card": None}}, f"card {CARD}", P.INTERNAL),
        ({"detectors": {"card": False}}, f"card {CARD}", P.INTERNAL),
        ({"detectors": {"email": "restricted"}}, "a@example.com", P.RESTRICTED),
        (
            {"patterns": [{"name": "e", "regex": r"E-\d{6}", "class": "CONFIDENTIAL"}]},
            "E-123456",
            CONF,
        ),
    ],
)
def test_prepare_follows_the_parameters(parameters, content, privacy):
    """unspecified_class, per-detector classes, disabled detectors and custom patterns apply."""
    assert prepared(create("privacy", parameters), content).privacy == privacy


def test_disabled_detector_is_not_reported():
    """A detector turned off neither raises the class nor shows in `detected`."""
    out = prepared(create("privacy", {"detectors": {"email": None}}), "a@example.com")
    assert out.detected == ()


@pytest.mark.parametrize(
    ("privacy", "edge", "self_hosted", "third_party"),
    [
        (P.PUBLIC, True, True, True),
        (P.INTERNAL, True, True, True),
        (P.CONFIDENTIAL, True, True, False),
        (P.RESTRICTED, True, True, False),
    ],
)
def test_filter_default_trust(privacy, edge, self_hosted, third_party):
    """By default CONFIDENTIAL and RESTRICTED requests stay off third_party backends."""
    policy, c = create("privacy", {}), ctx(privacy=privacy)
    kept = [policy.filter(c, b) is None for b in (EDGE, SELF_HOSTED, THIRD_PARTY)]
    assert kept == [edge, self_hosted, third_party]


def test_filter_reason_names_class_trust_allowed_and_detected():
    """The reason names the class, the detectors that raised it, the trust and what is allowed."""
    policy = create("privacy", {})
    reason = policy.filter(prepared(policy, "a@example.com", f"card {CARD}"), THIRD_PARTY)
    assert reason == (
        "RESTRICTED request (detected: card) may not use a third_party backend; "
        "allowed: edge, self_hosted"
    )
    explicit = policy.filter(ctx(privacy=P.CONFIDENTIAL), THIRD_PARTY)
    assert explicit.startswith("CONFIDENTIAL request may not use a third_party backend; allowed")


def test_filter_unspecified_context_uses_unspecified_class():
    """A context that was never prepared is judged as unspecified_class."""
    policy = create("privacy", {"unspecified_class": "CONFIDENTIAL"})
    assert policy.filter(ctx(), THIRD_PARTY).startswith("CONFIDENTIAL request")
    assert create("privacy", {}).filter(ctx(), THIRD_PARTY) is None


@pytest.mark.parametrize(
    ("view", "privacy", "excluded"),
    [
        (backend("edge", "eu-west-1"), P.RESTRICTED, None),
        (backend("edge", "local"), P.RESTRICTED, None),
        (
            backend("self_hosted", "us-east-1"),
            P.RESTRICTED,
            "'us-east-1'; allowed regions: eu-west-1, local",
        ),
        (backend("self_hosted", "us-east-1"), P.CONFIDENTIAL, None),
        (
            backend("third_party", "us-east-1"),
            P.PUBLIC,
            "PUBLIC request may not use a backend in region",
        ),
        (backend("third_party", "eu-west-1"), P.PUBLIC, None),
        (backend("third_party", "eu-west-1"), P.RESTRICTED, "may not use a third_party backend"),
    ],
)
def test_filter_regions(view, privacy, excluded):
    """A class with regions configured only uses backends in those regions; others, any region."""
    regions = {"RESTRICTED": ["eu-west-1", "local"], "public": ["eu-west-1", "eu-central-1"]}
    policy = create("privacy", {"regions": regions})
    reason = policy.filter(ctx(privacy=privacy), view)
    assert reason is None if excluded is None else excluded in reason


def test_filter_custom_trust():
    """A class's trust list replaces its default; the other classes keep theirs."""
    policy = create("privacy", {"trust": {"internal": ["edge"], "RESTRICTED": ["edge"]}})
    assert policy.filter(ctx(privacy=P.INTERNAL), SELF_HOSTED) == (
        "INTERNAL request may not use a self_hosted backend; allowed: edge"
    )
    assert policy.filter(ctx(privacy=P.RESTRICTED), SELF_HOSTED) is not None
    assert policy.filter(ctx(privacy=P.PUBLIC), THIRD_PARTY) is None


def test_restricted_never_third_party_even_when_built_directly():
    """The policy object refuses third_party for RESTRICTED even without create()'s checks."""
    policy = PrivacyPolicy("p", trust={P.RESTRICTED: ["edge", "third_party"]})
    assert "third_party backend" in policy.filter(ctx(privacy=P.RESTRICTED), THIRD_PARTY)


@pytest.mark.parametrize(
    ("privacy", "view", "forbidden"),
    [
        (P.RESTRICTED, THIRD_PARTY, True),
        (P.RESTRICTED, SELF_HOSTED, False),
        (P.RESTRICTED, EDGE, False),
        (P.CONFIDENTIAL, THIRD_PARTY, False),
        (P.UNSPECIFIED, THIRD_PARTY, False),
    ],
)
def test_third_party_forbidden(privacy, view, forbidden):
    """third_party_forbidden is True exactly for RESTRICTED on a third_party backend."""
    assert third_party_forbidden(privacy, view) is forbidden


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        (
            {"trust": {"restricted": ["edge", "third_party"]}},
            "RESTRICTED: third_party is never allowed",
        ),
        ({"trust": {"PUBLIC": ["cloud"]}}, "trust.PUBLIC.0: Input should be 'edge', 'self_hosted'"),
        ({"trust": {"PUBLIC": []}}, "trust: PUBLIC: allow at least one trust level"),
        (
            {"trust": {"SECRET": ["edge"]}},
            "trust.SECRET: unknown privacy class 'SECRET' (known: PUBLIC",
        ),
        (
            {"trust": {"public": ["edge"], "PUBLIC": []}},
            "'public' and 'PUBLIC' name the same class",
        ),
        ({"regions": {"PUBLIC": []}}, "regions: PUBLIC: list at least one region"),
        ({"unspecified_class": "unspecified"}, "unspecified_class: unknown privacy class"),
        (
            {"detectors": {"emial": "RESTRICTED"}},
            "detectors.emial: unknown detector 'emial'; did you mean 'email'",
        ),
        ({"detectors": {"email": True}}, "detectors.email: expected a privacy class, or null"),
        (
            {"patterns": [{"name": "t", "regex": "(", "class": "PUBLIC"}]},
            "patterns.0.regex: pattern 't'",
        ),
        (
            {"patterns": [{"name": "card", "regex": "x", "class": "PUBLIC"}]},
            "named 'card', a name already",
        ),
        ({"patterns": [{"name": "t", "regex": "x"}]}, "patterns.0.class: Field required"),
        ({"detector": {}}, "detector: unknown parameter; did you mean 'detectors'?"),
    ],
)
def test_bad_parameters_are_named(parameters, message):
    """Each bad parameter raises ValueError naming its path and the problem."""
    with pytest.raises(ValueError) as info:
        create("privacy", parameters)
    assert message in str(info.value)


def test_policy_has_its_name_and_contracts():
    """create() returns a named policy that is a Preparer, a Filter and a guard binding every
    request."""
    from router.core.framework import Filter, Preparer, binds_every_request

    policy = create("pii", {})
    assert policy.name == "pii"
    assert isinstance(policy, Preparer) and isinstance(policy, Filter)
    assert binds_every_request(policy)


def test_prepare_composes_with_an_earlier_preparer():
    """A second privacy policy never lowers the class or drops what the first detected."""
    first = create("strict", {"detectors": {"email": "RESTRICTED"}})
    second = create("lenient", {"detectors": {"email": "PUBLIC"}, "unspecified_class": "PUBLIC"})
    out = second.prepare(first.prepare(ctx("a@example.com, 555-123-4567")))
    assert (out.privacy, out.detected) == (P.RESTRICTED, ("email", "phone"))


# --- scan limit and RE2 patterns --------------------------------------------------------------


def test_request_over_the_scan_limit_is_raised_and_says_so():
    """Past max_scan_chars a request takes scan_limit_class (RESTRICTED), detected scan_limit."""
    policy = create("privacy", {"max_scan_chars": 100})
    out = prepared(policy, "hello " * 17)  # 102 characters
    assert (out.privacy, out.detected) == (P.RESTRICTED, ("scan_limit",))
    assert "(detected: scan_limit)" in policy.filter(out, THIRD_PARTY)


def test_scan_limit_counts_every_message_and_scans_the_head():
    """The limit is on the messages joined; what fits is still scanned and raises the class."""
    policy = create("privacy", {"max_scan_chars": 60, "scan_limit_class": "confidential"})
    assert prepared(policy, "a" * 29, "b" * 29).privacy == P.INTERNAL  # 60 characters joined
    out = prepared(policy, "a" * 30, "b" * 30)
    assert (out.privacy, out.detected) == (P.CONFIDENTIAL, ("scan_limit",))
    out = prepared(policy, f"card {CARD}", "x" * 100)
    assert (out.privacy, out.detected) == (P.RESTRICTED, ("card", "scan_limit"))


def test_default_scan_limit_fits_large_prompts():
    """A 1M-character prompt is scanned in full by default, not raised for its length."""
    out = prepared(create("privacy", {}), "word " * 200_000)
    assert (out.privacy, out.detected) == (P.INTERNAL, ())


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"max_scan_chars": 0}, "max_scan_chars: Input should be greater than or equal to 1"),
        ({"scan_limit_class": "SECRET"}, "scan_limit_class: unknown privacy class 'SECRET'"),
        (
            {"patterns": [{"name": "scan_limit", "regex": "x", "class": "PUBLIC"}]},
            "named 'scan_limit', a name already taken",
        ),
        (
            {"patterns": [{"name": "t", "regex": "(?<=EMP-)\\d{6}", "class": "PUBLIC"}]},
            "patterns.0.regex: pattern 't': invalid regex '(?<=EMP-)\\\\d{6}': invalid perl "
            "operator: (?<=: a look-behind (?<=...) is not supported (patterns run on RE2",
        ),
        (
            {"patterns": [{"name": "t", "regex": "(x)\\1", "class": "PUBLIC"}]},
            "pattern 't': invalid regex '(x)\\\\1': invalid escape sequence: \\1: a back-reference",
        ),
    ],
)
def test_scan_parameters_and_unsupported_patterns_are_named(parameters, message):
    """Bad scan parameters, and patterns RE2 cannot run, are refused naming the parameter."""
    with pytest.raises(ValueError) as info:
        create("privacy", parameters)
    assert message in str(info.value)


def test_a_card_number_in_a_tool_result_or_call_raises_the_class():
    """Tool results and tool-call arguments are scanned like any other text a backend receives."""
    from router.core.types import ToolCall, ToolSpec

    call = ChatMessage(
        "assistant", "", tool_calls=(ToolCall("c1", "pay", f'{{"card": "{CARD}"}}'),)
    )
    result = ChatMessage("tool", f"charged {CARD}", tool_call_id="c1")
    policy = create("privacy", {})
    for messages in [(ChatMessage("user", "pay"), call), (ChatMessage("user", "pay"), result)]:
        req = Request("r", "t", messages, 16, 0.0, tools=(ToolSpec("pay"),))
        out = policy.prepare(RequestContext(req, 10, P.UNSPECIFIED))
        assert (out.privacy, out.detected) == (P.RESTRICTED, ("card",))
