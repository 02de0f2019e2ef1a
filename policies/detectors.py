"""Sensitive-content detectors: a name and one or more precompiled (RE2 regex, validator) rules.

A detector fires on a text when a match of one of its rules passes that rule's validator (or at
once when the rule has none). Built-ins, in `DETECTORS`:

    email        local@domain.tld addresses
    phone        +CC international numbers (8-15 digits), US (555) 123-4567 / 555-123-4567 /
                 555.123.4567, national trunk-prefix formats (020 7946 0958, 06 12 34 56 78);
                 never bare digit runs, years, dates, versions or prices
    card         13-19 digits with optional single spaces/dashes, a major-network first digit
                 (2-6: Mastercard, Amex, Visa, Discover, JCB, UnionPay...) and a valid Luhn sum
    iban         country code, check digits and the country's registered length of
                 alphanumerics (spaces allowed in groups of 4), passing the ISO 13616 mod-97 check
    secret       sk-/sk-ant- API keys, AWS AKIA/ASIA key ids, GitHub ghp_/gho_/ghu_/ghs_/ghr_/
                 github_pat_ tokens, Slack xox[baprs]- tokens, Google AIza keys, PEM private key
                 blocks, JWTs, and password=/api_key:/token: assignments of a non-placeholder value
    national_id  US SSNs ###-##-#### (no area 000/666/9xx, group 00 or serial 0000), UK National
                 Insurance numbers (valid prefix, suffix A-D), Spanish DNI/NIE (valid check letter)

Linear time, by construction: every rule, built-in or custom, is an RE2 regex (google-re2), which
matches with automata in time linear in the text, never backtracks, and releases the GIL while
it scans. RE2 has no look-arounds, so what a built-in match may follow or precede is part of
the match (`(?:\\A|[^\\w+])` before, `(?:\\z|[^\\w.,-])` after) or a `\\b`, and the validators
check only the match and a few characters around it. A rule without a validator is one RE2
search. A rule with one is one left-to-right pass over non-overlapping matches, each validated in
time linear in its length, and built so that a rejected match hides no other candidate: a card
rule matches a whole digit run and tries each possible start in it; an IBAN rule matches an
IBAN-shaped span and tries each start in it on a bounded window. So a scan costs
O(length of the text) whatever it holds; tests/policies/test_detectors.py checks this on
adversarial inputs for every rule at 10k, 100k and 1M characters. All six built-ins scan 1M
characters of prose in about 17 ms (mostly without the GIL); the costliest adversarial input
known, near misses that each reach a validator ("+1 2 " repeated), would take about 2 s per 1M
characters, most of it RE2's Python binding building match objects (CPython 3.11, a slow 2-core
machine): so a rule offers at most MAX_CANDIDATES (4096) matches to its validator per scan and
counts as fired past that (fail closed), and the privacy policy's max_scan_chars bounds the
rest. Matching is ASCII-only: IBANs and ID letters must be upper-case, digits ASCII.

Custom detectors: `Detector("ticket", r"TCK-\\d{6}")`, in RE2 syntax. A regex that RE2 refuses
(invalid, or with a look-around, back-reference, atomic group or possessive quantifier, which
need backtracking) raises ValueError saying why.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from policies.linear_regex import Match, Pattern, compile_linear

Validator = Callable[[Match], bool]

COUNT_DIGITS_CHARS = 2048  # detect() counts digits (ten str.count passes) up to this length

# Matches one rule offers its validator per scan, at most: past that the rule counts as fired.
# Each costs a few microseconds of Python (RE2's match object, the check), so this bounds the
# GIL-holding part of a scan (~25 ms a rule) whatever the text; a real text rarely comes close.
MAX_CANDIDATES = 4096


@dataclass(frozen=True, slots=True)
class Rule:
    """An RE2 pattern and an optional validator of its matches.

    A rule with `needles` is skipped at once on a text that holds none of them (the built-ins
    all have some, so a prompt without digits, "@", "+", "-", ":" or "=" costs no RE2 call), and
    one with `min_digits` on a text with fewer ASCII digits than any of its matches holds, when
    the caller counted them (detect() does: a short prompt with a digit or two costs no RE2 call).
    Without a validator the rule fires when the pattern matches anywhere (one RE2 search). With
    one, the matches are offered to it left to right (non-overlapping) until one passes; the
    validator must take time linear in the match and may look a bounded distance around it.
    """

    pattern: Pattern
    validator: Validator | None = None
    needles: tuple[str, ...] = ()  # every match contains one of these: without any, skip
    min_digits: int = 0  # every match holds at least this many ASCII digits: with fewer, skip

    def fires(self, text: str, digits: int | None = None) -> bool:
        """Whether `text` holds a match that the validator accepts. `digits`: the exact number
        of ASCII digits in this `text`, if the caller counted them (detect() does, for short
        texts); a wrong count silently skips rules, so leave it None unless it is exact."""
        if digits is not None and digits < self.min_digits:
            return False  # a count done once per text is far cheaper than an RE2 call
        if self.needles:
            for needle in self.needles:  # a substring test is far cheaper than an RE2 call
                if needle in text:
                    break
            else:
                return False
        if self.validator is None:
            return self.pattern.search(text) is not None
        for n, match in enumerate(self.pattern.finditer(text)):
            if n == MAX_CANDIDATES:
                return True  # too many near misses to check: counted as a match (fail closed)
            if self.validator(match):
                return True
        return False


class Detector:
    """A named set of rules; it fires on a text when any of its rules does."""

    __slots__ = ("name", "rules")

    def __init__(self, name: str, regex: str | Pattern, validator: Validator | None = None) -> None:
        """A one-rule detector; a regex RE2 cannot compile raises ValueError naming the detector."""
        if not name:
            raise ValueError("a detector needs a name")
        if isinstance(regex, str):
            try:
                regex = compile_linear(regex)
            except ValueError as exc:
                raise ValueError(f"detector {name!r}: invalid regex {regex!r}: {exc}") from None
        self.name = name
        self.rules: tuple[Rule, ...] = (Rule(regex, validator),)

    @classmethod
    def any_of(cls, name: str, rules: Iterable[Rule]) -> Detector:
        """A detector that fires when any of `rules` does."""
        detector = cls.__new__(cls)
        detector.name, detector.rules = name, tuple(rules)
        return detector

    def fires(self, text: str, digits: int | None = None) -> bool:
        """Whether any rule fires on `text` (`digits`: its ASCII digits, if counted)."""
        return any(rule.fires(text, digits) for rule in self.rules)

    def __repr__(self) -> str:
        return f"Detector({self.name!r}, {len(self.rules)} rule(s))"


def detect(texts: Iterable[str], detectors: Sequence[Detector]) -> list[str]:
    """Names of the detectors that fire on any of `texts`, in the order given, each once.

    The texts are scanned as one, joined by blank lines (one pass per rule, however many
    messages there are), so a custom regex should not match across line breaks.
    """
    text = "\n\n".join(texts)
    fired: list[str] = []
    if not text or text.isspace():
        return fired
    digits = sum(map(text.count, _DIGITS)) if len(text) <= COUNT_DIGITS_CHARS else None
    for detector in detectors:
        if detector.name in fired:
            continue
        for rule in detector.rules:  # as detector.fires(), without a generator per detector
            if rule.fires(text, digits):
                fired.append(detector.name)
                break
    return fired


def _rule(
    regex: str,
    validator: Validator | None = None,
    needles: str | tuple[str, ...] = (),
    min_digits: int = 0,
) -> Rule:
    needles = (needles,) if isinstance(needles, str) else needles
    return Rule(compile_linear(regex), validator, needles, min_digits)


_DIGITS = tuple("0123456789")


# Context that a built-in match consumes in place of Python's look-arounds. Rules without a
# validator only ask whether a match exists, so consuming a neighbour is exact for them.
_START = r"(?:\A|[^\w+])"  # not after a word character or a "+"
_PHONE_END = r"(?:\z|[^\w.,-]|[.,]\B|[.,][A-Za-z_])"  # not before [\w-] or [.,]\d; no digits
_NOT_SPACE = r"[^\t\n\v\f\r "  # opens a class: Python's \s (RE2's has no \v)

# --- validators -------------------------------------------------------------------------------


def _digits(text: str) -> str:
    return "".join(c for c in text if "0" <= c <= "9")


def luhn_valid(number: str) -> bool:
    """Whether the digits of `number` (other characters ignored) pass the Luhn check."""
    total = 0
    for i, ch in enumerate(reversed(_digits(number))):
        d = ord(ch) - 48
        total += (d * 2 - 9 if d > 4 else d * 2) if i % 2 else d
    return total % 10 == 0


def _card(match: Match) -> bool:
    """A card is 13-19 digits ending where the run ends, starting with 2-6 after a non-digit.

    The rule matches a whole run of digits (with single spaces or dashes), so every start is
    tried here: only those in the last 19 digits can qualify, so this is O(1) per run.
    """
    run = match.group()
    ends: list[int] = []  # positions of the last 19 digits, last first
    i = len(run) - 1
    while i >= 0 and len(ends) < 19:
        if run[i] not in " -":
            ends.append(i)
        i -= 1
    for count in range(13, len(ends) + 1):
        start = ends[count - 1]
        after_non_digit = start == 0 or run[start - 1] in " -"
        if run[start] in "23456" and after_non_digit and luhn_valid(run[start:]):
            return True
    return False


# ISO 13616 registry: country code and IBAN length.
_IBAN_REGISTRY = (
    "AD24 AE23 AL28 AT20 AZ28 BA20 BE16 BG22 BH22 BI27 BR29 BY28 CH21 CR22 CY28 CZ24 DE22 "
    "DJ27 DK18 DO28 EE20 EG29 ES24 FI18 FK18 FO18 FR27 GB22 GE22 GI23 GL18 GR27 GT28 HR21 "
    "HU28 IE22 IL23 IQ23 IS26 IT27 JO30 KW30 KZ20 LB28 LC32 LI21 LT20 LU20 LV21 LY25 MC27 "
    "MD24 ME22 MK19 MN20 MR27 MT31 MU30 NI28 NL18 NO15 OM23 PK24 PL28 PS29 PT25 QA29 RO24 "
    "RS22 RU33 SA24 SC31 SD18 SE24 SI19 SK24 SM27 SO23 ST25 SV28 TL23 TN24 TR26 UA29 VA22 "
    "VG24 XK20 YE30"
)
_IBAN_LENGTHS = {entry[:2]: int(entry[2:]) for entry in _IBAN_REGISTRY.split()}
# The IBAN-shaped span from a country code: at most 43 characters.
_IBAN_BODY = compile_linear(r"[A-Z]{2}\d\d(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
_IBAN_WINDOW = 48
_IBAN_BODY_AT_WORD = compile_linear(r"\b" + _IBAN_BODY.pattern)
_IBAN_DIGITS = str.maketrans({c: str(ord(c) - 55) for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"})


def iban_valid(iban: str) -> bool:
    """Whether `iban` (spaces ignored) has its country's length and passes the mod-97 check."""
    s = iban.replace(" ", "").upper()
    if len(s) != _IBAN_LENGTHS.get(s[:2], -1) or not (s.isascii() and s.isalnum()):
        return False
    return int((s[4:] + s[:4]).translate(_IBAN_DIGITS)) % 97 == 1


def _iban(match: Match) -> bool:
    """An IBAN starts at the match or after a space in it (a rejected one hides no other).

    Each start is read from a bounded window: the mod-97 check on the first characters of the
    country's length, then the shape the rule requires (which covers at least that length).
    """
    text, start, span = match.string, match.start(), match.group()
    offset = 0
    while offset >= 0:
        at = start + offset
        length = _IBAN_LENGTHS.get(text[at : at + 2], 0)
        window = text[at : at + _IBAN_WINDOW]
        if length and window[2:4].isdigit() and iban_valid(window.replace(" ", "")[:length]):
            body = _IBAN_BODY.match(window)
            if body is not None and len(body.group().replace(" ", "")) >= length:
                return True
        offset = span.find(" ", offset) + 1 or -1
    return False


def _international_phone(match: Match) -> bool:
    start = match.start()
    if start and match.string[start - 1] == "+":  # "++44...": the rule's \B lets that through
        return False
    return 8 <= len(_digits(match.group())) <= 15  # the end the rule consumed has no digits


# Keys whose assigned value is a secret, compared lower-case with the end of the key; the rule
# matches them in any case (and the validator checks the key as written).
_SECRET_KEYS = (
    *(f"{a}{sep}key" for a in ("api", "access", "secret", "private") for sep in ("_", "-", "")),
    *("password", "passwd", "passphrase", "secret", "token"),
)
_KEYS = r"(?i:(?:api|access|secret|private)[_-]?key|password|passwd|passphrase|secret|token)"
_NOT_A_SECRET = compile_linear(
    r"[<{$%\[*.#_-]"  # <your-key>, ${VAR}, %s, [redacted], ***, ...
    r"|.*[(\[]"  # a call or a subscript: get_password(), os.environ["X"]
    r"|(?i:.*(?:example|your|placeholder|redacted|changeme|dummy|xxxx))"
    r"|(?i:null|none|true|false|undefined|password|secret|required|optional|string)\z"
    r"|[a-z]+\z"  # a lower-case word
    r"|[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+\z"  # attribute access: settings.SECRET_KEY
    r"|[A-Z][A-Z0-9]*_[A-Z0-9_]*\z"  # a constant or variable name: DB_PASSWORD
)
_KINDS = (str.islower, str.isupper, str.isdigit, lambda c: not c.isalnum())


def _assigned_secret(match: Match) -> bool:
    start, value = match.start(1), match.group("value")  # group 1: the operator
    key = match.string[max(0, start - 40) : start].rstrip(" \t\"'").lower()
    if not key.endswith(_SECRET_KEYS) or len(value) < 6 or len(set(value)) < 4:
        return False
    if _NOT_A_SECRET.match(value):
        return False
    return len(value) >= 12 or sum(any(map(kind, value)) for kind in _KINDS) >= 2


def _random_key(match: Match) -> bool:
    """Letters and digits both: a key, not a hyphenated phrase such as sk-this-is-just-text."""
    key = match.group("key")
    return any(d in key for d in "0123456789") and key.lower() != key.upper()


_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"
_BAD_NINO_PREFIXES = frozenset(("BG", "GB", "KN", "NK", "NT", "TN", "ZZ"))


def _letter_id(match: Match) -> bool:
    """A UK National Insurance number, or a Spanish DNI/NIE with its check letter right."""
    if nino := match.group("nino"):
        return nino[:2] not in _BAD_NINO_PREFIXES
    number = match.group("dni").replace("X", "0").replace("Y", "1").replace("Z", "2")
    return _DNI_LETTERS[int(number) % 23] == match.group("letter")


# --- rules ------------------------------------------------------------------------------------

_PHONE = [
    _rule(  # +44 20 7946 0958, +1 (555) 123-4567, +442079460958
        r"\B\+(?:[1-9]\d{7,14}"
        r"|[1-9]\d{0,2}(?:[ .-]?\(\d{1,4}\))?(?:[ .-]\d{1,10}){1,5})" + _PHONE_END,
        _international_phone,
        "+",
    ),
    _rule(
        "(?:"
        + "|".join(
            (
                _START + r"\(\d{3}\) ?\d{3}-\d{4}",  # (555) 123-4567
                r"(?:\A|[^\w+.])\d{3}-\d{3}-\d{4}",  # 555-123-4567
                r"(?:\A|[^\w+.-])\d{3}\.\d{3}\.\d{4}",  # 555.123.4567
                _START + r"0(?:\d{1,4}[ -]\d{3,4}[ -]\d{3,4}"  # 020 7946 0958, 0161 496 0000
                r"|[1-9] \d\d(?: \d\d){3}|[1-9]\.\d\d(?:\.\d\d){3})",  # 06 12 34 56 78
            )
        )
        + ")"
        + _PHONE_END,
        None,
        _DIGITS,
        8,  # the fewest digits of the alternatives: 0 + \d{1} + \d{3} + \d{3}
    ),
]

# A whole run of 13 or more digits (single spaces/dashes between); _card tries every start.
_CARD = [_rule(r"\d(?:[ -]?\d){12,}", _card, _DIGITS, 13)]

# An IBAN-shaped span at the start of a word; _iban tries each start in it.
_IBAN = [Rule(_IBAN_BODY_AT_WORD, _iban, _DIGITS, 2)]  # the check digits

_SECRET = [
    _rule(
        "|".join(
            (
                r"(?:\A|\W)eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]{10,}",  # JWT
                r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----",  # PEM
                r"(?:\A|\W)gh[pousr]_[A-Za-z0-9]{36,}\b",  # GitHub classic tokens
                r"(?:\A|\W)github_pat_\w{22,}\b",  # GitHub fine-grained tokens
                r"(?:\A|\W)xox[baprs]-[A-Za-z0-9-]{10,}",  # Slack
                r"(?:\A|\W)A(?:KIA[0-9A-Z]{16}\b|SIA[0-9A-Z]{16}\b"  # AWS
                r"|Iza[\w-]{35}(?:\z|[^\w-]))",  # Google
            )
        ),
        None,
        ("eyJ", "-----BEGIN", "gh", "xox", "AKIA", "ASIA", "AIza"),
    ),
    _rule(
        r"(?:\A|[^\w-])sk-(?P<key>(?:ant-|proj-|svcacct-|admin-)?[\w-]{20,})", _random_key, "sk-"
    ),
    # key: value, key = value, "key": "value"; the validator checks the whole key. One rule per
    # operator, so that a rejected value holding the other operator hides nothing.
    *(
        _rule(
            _KEYS + rf"(?:[\"' ]|\" )?(?P<op>{op})[ \t]*[\"']?(?P<value>{_NOT_SPACE}\"',;]{{6,}})",
            _assigned_secret,
            op,
        )
        for op in ":="
    ),
]

_NATIONAL_ID = [
    _rule(  # US SSN: no area 000, 666 or 9xx, group 00, serial 0000
        r"(?:\A|[^\w-])(?:00[1-9]|0[1-9]\d|[1-578]\d\d|6[0-57-9]\d|66[0-57-9])"
        r"-(?:0[1-9]|[1-9]\d)-(?:000[1-9]|00[1-9]\d|0[1-9]\d\d|[1-9]\d{3})(?:\z|[^\d-])",
        None,
        "-",
        9,
    ),
    _rule(  # UK NINO, Spanish DNI/NIE
        r"(?:\A|[^\w-])(?:(?P<nino>[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z](?: ?\d\d){3} ?[A-D])"
        r"|(?P<dni>\d{8}|[XYZ]\d{7})-?(?P<letter>[A-Z]))\b",
        _letter_id,
        _DIGITS,
        6,  # a NINO's three pairs; a DNI/NIE has 7 or 8
    ),
]

_EMAIL = r"[A-Za-z0-9_%+-]@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,24}(?:\z|[^A-Za-z0-9-])"

DETECTORS: dict[str, Detector] = {
    d.name: d
    for d in (
        Detector.any_of("email", [_rule(_EMAIL, None, "@")]),
        Detector.any_of("phone", _PHONE),
        Detector.any_of("card", _CARD),
        Detector.any_of("iban", _IBAN),
        Detector.any_of("secret", _SECRET),
        Detector.any_of("national_id", _NATIONAL_ID),
    )
}
