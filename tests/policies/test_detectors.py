"""Sensitive-content detectors: what each built-in finds and ignores, custom ones, detect()."""

from __future__ import annotations

import string
import subprocess
import sys
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.detectors import (
    DETECTORS,
    Detector,
    detect,
    iban_valid,
    luhn_valid,
)

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0"
    "IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
KEY48 = "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8s9T0u1V2w3X4"

CASES = [
    # email
    ("email", "mail jane.doe@example.com today", True),
    ("email", "x+tag@mail.example.co.uk", True),
    ("email", "@dataclass(frozen=True)", False),
    ("email", "ssh user@localhost", False),
    ("email", "follow @someone on example.com", False),
    # phone
    ("phone", "call (555) 123-4567", True),
    ("phone", "call 555-123-4567.", True),
    ("phone", "call 555.123.4567", True),
    ("phone", "ring +44 20 7946 0958", True),
    ("phone", "ring +1 (555) 123-4567", True),
    ("phone", "ring +442079460958", True),
    ("phone", "ring 020 7946 0958", True),
    ("phone", "ring 06 12 34 56 78", True),
    ("phone", "ring +33 6 12 34 56 78", True),
    ("phone", "in 2023 we grew", False),
    ("phone", "it costs $1,234.56 or 1234567.89", False),
    ("phone", "order 5551234567 shipped", False),
    ("phone", "released 2024-05-01 at 10:30", False),
    ("phone", "python 3.11.7 on 192.168.100.200", False),
    ("phone", "ISBN 978-3-16-148410-0", False),
    ("phone", "+5 points, +12345", False),
    # card
    ("card", "card 4111 1111 1111 1111 exp 12/29", True),
    ("card", "card 4111-1111-1111-1111", True),
    ("card", "card 4111111111111111", True),
    ("card", "amex 378282246310005", True),
    ("card", "mc 5555555555554444, disc 6011111111111117", True),
    ("card", "visa13 4222222222222", True),
    ("card", "card 4111 1111 1111 1112", False),  # fails Luhn
    ("card", "id 4111111111111112", False),  # fails Luhn
    ("card", "ts 1700000000000 and 9999999999999995", False),  # no card network starts so
    ("card", "ISBN 978-3-16-148410-0", False),
    ("card", "4111 1111 1111 1111 1111 1111", False),  # part of a longer number
    # iban
    ("iban", "pay to GB82 WEST 1234 5698 7654 32 please", True),
    ("iban", "GB82WEST12345698765432", True),
    ("iban", "DE89 3704 0044 0532 0130 00", True),
    ("iban", "FR14 2004 1010 0505 0001 3M02 606", True),
    ("iban", "NL91ABNA0417164300.", True),
    ("iban", "GB82 WEST 1234 5698 7654 33", False),  # corrupted: mod-97 fails
    ("iban", "DE89 3704 0044 0532 0130 01", False),
    ("iban", "XX82 WEST 1234 5698 7654 32", False),  # no such country
    ("iban", "GB82 WEST 1234", False),  # too short for GB
    ("iban", "AB12 CDEF GHIJ KLMN", False),
    # secret
    ("secret", f"key sk-{KEY48}", True),
    ("secret", f"sk-proj-{KEY48}", True),
    ("secret", f"sk-ant-api03-{KEY48}", True),
    ("secret", "AKIAIOSFODNN7EXAMPLE", True),
    ("secret", f"ghp_{KEY48[:36]}", True),
    ("secret", "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", True),
    ("secret", "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", True),
    ("secret", "AIzaSyA-1234567890abcdefghijklmnopqrstu", True),
    ("secret", "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA", True),
    ("secret", "-----BEGIN OPENSSH PRIVATE KEY-----", True),
    ("secret", f"Authorization: Bearer {JWT}", True),
    ("secret", "password=hunter22", True),
    ("secret", "api_key: 'Zx9-qL2-Mn8'", True),
    ("secret", '{"client_secret": "9f8e7d6c5b4a"}', True),
    ("secret", "DB_PASSWORD = S3cure!pass", True),
    ("secret", "the task-management-system-overview-2", False),
    ("secret", "sk-learn and risk-free", False),
    ("secret", "sk-this-is-just-a-hyphenated-phrase", False),
    ("secret", "AKIA alone, Asia is big, eyJ too", False),
    ("secret", "-----BEGIN PUBLIC KEY----- and -----BEGIN CERTIFICATE-----", False),
    ("secret", "the password is hunter2", False),
    ("secret", "password: required", False),
    ("secret", "password = get_password()", False),
    ("secret", "password: ${DB_PASSWORD}", False),
    ("secret", "api_key=<your-api-key>", False),
    ("secret", "password: changeme", False),
    ("secret", "secret_key = settings.SECRET_KEY", False),
    ("secret", "token = tokens[0]; max_tokens: 256", False),
    # national_id
    ("national_id", "SSN 123-45-6789", True),
    ("national_id", "SSN: 078-05-1120.", True),
    ("national_id", "NI AB123456C", True),
    ("national_id", "NI AB 12 34 56 C", True),
    ("national_id", "DNI 12345678Z", True),
    ("national_id", "DNI 12345678-Z", True),
    ("national_id", "NIE X1234567L", True),
    ("national_id", "000-12-3456 666-12-3456 912-34-5678", False),  # invalid areas
    ("national_id", "123-00-4567 123-45-0000", False),  # group 00, serial 0000
    ("national_id", "call 555-123-4567 on 2024-05-01", False),
    ("national_id", "QQ123456C GB123456A AB123456E", False),  # bad prefix/suffix letters
    ("national_id", "DNI 12345678A", False),  # wrong check letter
    ("national_id", "model 3D printer, 4K video", False),
]


@pytest.mark.parametrize(("name", "text", "fires"), CASES)
def test_builtin_detector(name, text, fires):
    """Each built-in detector fires on its positives and stays quiet on the look-alikes."""
    assert DETECTORS[name].fires(text) is fires


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("nothing to see here", []),
        ("mail a@example.com or call 555-123-4567", ["email", "phone"]),
        ("SSN 123-45-6789, card 4111 1111 1111 1111", ["card", "national_id"]),
        (f"sk-{KEY48} and jane@example.org", ["email", "secret"]),
    ],
)
def test_builtin_detectors_do_not_overlap(text, expected):
    """Only the detectors for the content present fire, reported in DETECTORS order."""
    assert detect([text], list(DETECTORS.values())) == expected


def test_detect_order_and_uniqueness():
    """detect() reports in the order of the detectors given, each name once, across texts."""
    card, email = DETECTORS["card"], DETECTORS["email"]
    texts = ["write to a@example.com", "", "card 4111111111111111", "b@example.com"]
    assert detect(texts, [card, email, card]) == ["card", "email"]
    assert detect(texts, [email, card]) == ["email", "card"]
    assert detect([], [email]) == []
    assert detect(texts, []) == []


def test_detect_does_not_join_across_messages():
    """Content split across two messages does not make one match."""
    assert detect(["call 555-123", "-4567"], [DETECTORS["phone"]]) == []


@pytest.mark.parametrize(
    ("text", "fires"),
    [("see TCK-123456 for details", True), ("TCK-12", False), ("tck-123456", False)],
)
def test_custom_regex_detector(text, fires):
    """A detector built from a name and a regex string fires where its regex matches."""
    assert Detector("ticket", r"TCK-\d{6}").fires(text) is fires


def test_custom_detector_with_validator():
    """A validator can veto matches of a custom detector."""
    even = Detector("even", r"\d+", lambda m: int(m.group()) % 2 == 0)
    assert detect(["7 and 9"], [even]) == []
    assert detect(["7 and 10"], [even]) == ["even"]


@pytest.mark.parametrize("regex", ["(", "[a-", "x{2,1}"])
def test_invalid_custom_regex(regex):
    """An invalid regex raises ValueError naming the detector."""
    with pytest.raises(ValueError, match="detector 'bad': invalid regex"):
        Detector("bad", regex)


@pytest.mark.parametrize(
    ("number", "valid"),
    [("4111 1111 1111 1111", True), ("79927398713", True), ("79927398710", False)],
)
def test_luhn(number, valid):
    """The Luhn check accepts valid numbers and rejects a wrong check digit."""
    assert luhn_valid(number) is valid


@pytest.mark.parametrize(
    ("iban", "valid"),
    [
        ("GB82 WEST 1234 5698 7654 32", True),
        ("gb82west12345698765432", True),
        ("GB82 WEST 1234 5698 7654 3", False),
        ("GB28 WEST 1234 5698 7654 32", False),
    ],
)
def test_iban_valid(iban, valid):
    """The ISO 13616 check wants the country's length and a mod-97 remainder of 1."""
    assert iban_valid(iban) is valid


@given(st.lists(st.text(max_size=300), max_size=5))
def test_detect_never_raises(texts):
    """detect() returns a list of known names on any text at all."""
    assert set(detect(texts, list(DETECTORS.values()))) <= set(DETECTORS)


def count_digits(text: str) -> int:
    return sum(map(text.count, "0123456789"))


_COUNTED = [(d.name, r) for d in DETECTORS.values() for r in d.rules if r.min_digits]
_NEAR = st.text("0123456789 -.+()/ABCDEGHJKLMNPRSTWXYZ\n", max_size=60)


@pytest.mark.parametrize(("name", "rule"), _COUNTED, ids=[n for n, _ in _COUNTED])
@given(text=st.one_of(_NEAR, st.sampled_from([t for _, t, _ in CASES])))
def test_min_digits_is_a_lower_bound(name, rule, text):
    """Every match of a rule with min_digits holds that many digits, so the skip never hides
    one: the rule answers as it would without it."""
    for match in rule.pattern.finditer(text):
        assert count_digits(match.group()) >= rule.min_digits, (name, match.group())
    assert rule.fires(text, count_digits(text)) is rule.fires(text)


def _luhn_complete(body: str) -> str:
    for check in "0123456789":
        if luhn_valid(body + check):
            return body + check
    raise AssertionError("unreachable")


@st.composite
def cards(draw: st.DrawFn) -> str:
    length = draw(st.integers(13, 19))
    first = draw(st.sampled_from("23456"))
    rest = draw(st.text("0123456789", min_size=length - 2, max_size=length - 2))
    number = _luhn_complete(first + rest)
    sep = draw(st.sampled_from(["", " ", "-"]))
    return sep.join(number[i : i + 4] for i in range(0, len(number), 4))


words = st.text(string.ascii_letters + string.punctuation, min_size=1, max_size=12)


@given(st.lists(words, max_size=20), cards(), st.lists(words, max_size=20))
def test_luhn_valid_card_in_words_is_detected(before, card, after):
    """A Luhn-valid card number among random ASCII words is always detected."""
    text = " ".join([*before, card, *after])
    assert "card" in detect([text], [DETECTORS["card"]])


# --- the RE2 rewrite: context around matches, and linear time ----------------------------------


@pytest.mark.parametrize(
    ("name", "text", "fires"),
    [
        # at the very start and end of the text, and two matches side by side
        ("email", "a@example.com", True),
        ("email", "a@example.com,b@example.org", True),
        ("email", "x@y@example.com", True),
        ("phone", "+44 20 7946 0958", True),
        ("phone", "++44 20 7946 0958", False),
        ("phone", "+1 2 +44 20 7946 0958", True),  # right after a rejected candidate
        ("phone", "+1 2.+44 20 7946 0958", True),
        ("phone", "555-123-4567", True),
        ("phone", "(555) 123-4567,(555) 123-4568", True),
        ("card", "4111111111111111", True),
        ("card", "4111111111111112 4111111111111111", True),  # a start inside a longer run
        ("card", "4111111111111112, 4111111111111111", True),
        ("card", "1234 4111 1111 1111 1111", True),
        ("card", "14111111111111111", False),  # no start after a non-digit
        ("iban", "GB82WEST12345698765432", True),
        ("iban", "XX12 GB82 WEST 1234 5698 7654 32", True),  # an IBAN inside a rejected one
        ("iban", "GB82 WEST 1234 5698 7654 33 DE89 3704 0044 0532 0130 00", True),
        ("iban", "AGB82WEST12345698765432", False),
        ("secret", JWT, True),
        ("secret", f"-{JWT}", True),
        ("secret", f"a{JWT}", False),
        ("secret", "x=password=hunter22", True),
        ("secret", "?user=bob&password=hunter22", True),
        ("secret", "password: aaaaaa password=Secr3tValue", True),
        ("secret", f"sk-this-is-just-a-phrase sk-{KEY48}", True),
        ("secret", f"ask-{KEY48}", False),
        ("secret", "AKIAIOSFODNN7EXAMPLE,AKIAIOSFODNN7EXAMPLF", True),
        ("national_id", "123-45-6789", True),
        ("national_id", "1123-45-6789", False),
        ("national_id", "123-45-6789-1", False),
        ("national_id", "DNI 12345678A 12345678Z", True),  # after a wrong check letter
        ("national_id", "GB123456A AB123456C", True),  # after a refused NINO prefix
        ("national_id", "X12345678Z", False),
    ],
)
def test_match_context_is_kept(name, text, fires):
    """What may precede or follow a match, at text edges, side by side or after a miss, holds."""
    assert DETECTORS[name].fires(text) is fires


@pytest.mark.parametrize(
    ("regex", "construct"),
    [
        (r"(?<=x)y", "look-behind"),
        (r"x(?!y)", "look-ahead"),
        (r"(a)\1", "back-reference"),
        (r"(?P<a>x)(?P=a)", "back-reference"),
        (r"(?>a+)b", "atomic group"),
        (r"a++", "possessive"),
    ],
)
def test_backtracking_constructs_are_refused(regex, construct):
    """A custom regex that needs backtracking is refused, saying which construct and why."""
    with pytest.raises(ValueError, match=f"detector 'bad': invalid regex .*{construct}.*RE2"):
        Detector("bad", regex)


# Units repeated to the scanned length, aimed at every rule: many candidates whose match runs
# on to the end of the text, long runs of the characters a repetition takes, near misses that
# reach the validators.
ADVERSARIAL = {
    "email": ("a@b-", "a@b.", "%@a.b1"),
    "phone": ("+1 2 ", "+1 (2) 3.", "(555) 123-", "555-123-", "555.123.", "0 12 34 "),
    "card": ("4 ", "4111-", "41111111111111112  "),
    "iban": ("GB82 ", "GB82WEST", "DE89 3704 0044 "),
    "secret": ("-eyJ", "eyJa.", " sk-a", "password: aaaaaa ", 'ken" :', "-----BEGIN A ", " ghp_"),
    "national_id": ("123-45-", "1A ", "AB12 34 56 ", "12345678-"),
}
SIZES = (10_000, 100_000, 1_000_000)


def adversarial(unit: str, size: int) -> str:
    """`unit` repeated and cut to `size` characters."""
    return (unit * (size // len(unit) + 1))[:size]


def _scan_seconds(detector: Detector, text: str, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        detector.fires(text)
        best = min(best, time.perf_counter() - start)
    return best


@pytest.mark.parametrize("name", list(ADVERSARIAL))
def test_scan_time_grows_linearly(name):
    """Each 10x longer adversarial text costs well under the 100x of a quadratic rule, to 1M."""
    detector = DETECTORS[name]
    for unit in ADVERSARIAL[name]:
        times = []
        for size in SIZES:  # the smaller sizes first: a quadratic rule fails before 1M
            repeats = 5 if size < SIZES[-1] else 2  # best of: a busy machine adds noise
            times.append(max(_scan_seconds(detector, adversarial(unit, size), repeats), 1e-5))
            # Generous: cache effects make a linear scan grow up to ~40x from 100k to 1M.
            if len(times) > 1:
                assert times[-1] / times[-2] < 60, f"{name} on {unit!r}: {times}"
        assert times[-1] / times[0] < 2000, f"{name} on {unit!r}: {times}"


def test_custom_pattern_with_nested_quantifiers_is_linear():
    """A custom regex that backtracks exponentially in Python's re scans 1M chars at once."""
    code = (
        "from policies.detectors import Detector\n"
        "d = Detector('nested', r'(?:a+)+b')\n"
        "assert not d.fires('a' * 1_000_000) and d.fires('a' * 1_000 + 'b')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_past_max_candidates_near_misses_a_rule_counts_as_fired():
    """A rule offers at most MAX_CANDIDATES matches to its validator: one near miss more and it
    counts as fired (fail closed), so no text makes a scan do unbounded Python work."""
    from policies.detectors import MAX_CANDIDATES

    phone = DETECTORS["phone"]
    assert not phone.fires("+1 2 " * (MAX_CANDIDATES - 1))
    assert phone.fires("+1 2 " * (MAX_CANDIDATES + 1))
