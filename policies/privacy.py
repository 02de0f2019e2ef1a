"""privacy: keeps each request on backends trusted, and located, for its data-sensitivity class.

A guard (`binding = True`): its prepare and filter run for every request, under every profile,
whether or not the profile lists it, so no profile and no client can opt out of them.

Prepare:
    every request has every text a backend would receive scanned by the enabled detectors
    (message contents and text parts, image URLs, tool-call arguments, tool results, tool
    definitions, the response schema: Request.texts()), whatever class it claims, and
        privacy = max(claimed, ctx.privacy, class of each detector that fired)
    where claimed is the request's class, or unspecified_class for an UNSPECIFIED one. So a
    client may raise its class but never lower it below what its content calls for, and
    ctx.privacy keeps what an earlier preparer decided; `detected` names the detectors that fired.
Filter (on the effective class, ctx.privacy; UNSPECIFIED there counts as unspecified_class):
    excluded when backend.config.effective_trust is not in trust[class], or when regions[class]
    is set and backend.config.region is not in it. A RESTRICTED request never reaches a
    third_party backend: allowing that is a parameter error, and the filter checks it anyway
    (`third_party_forbidden`, which the scheduler may also apply as an always-on guard).

Parameters (all optional; class names PUBLIC, INTERNAL, CONFIDENTIAL, RESTRICTED in any case):
    trust: {class: [trust levels]}, levels from edge, self_hosted, third_party. A class left out
        keeps its default: PUBLIC and INTERNAL [edge, self_hosted, third_party]; CONFIDENTIAL and
        RESTRICTED [edge, self_hosted]. third_party for RESTRICTED is refused.
    regions: {class: [regions]} compared with the backends' `region`; a class left out: any.
    unspecified_class: the class of an UNSPECIFIED request where nothing fired (INTERNAL).
    detectors: {built-in detector: class it raises to, or null/false to turn it off}. Defaults:
        email CONFIDENTIAL, phone CONFIDENTIAL, card RESTRICTED, iban RESTRICTED,
        secret RESTRICTED, national_id RESTRICTED (policies/detectors.py says what each finds).
    patterns: [{name, regex, class}] custom detectors, run on every request, checked after the
        built-ins. RE2 syntax (linear-time matching, ASCII \\d \\w \\b): a regex with a
        look-around or a back-reference is refused, naming the pattern and why.
    max_scan_chars: the most characters of a request scanned (2,000,000; the messages joined
        by blank lines), so that scan time has a hard bound. A longer request has its first
        max_scan_chars characters scanned and is also raised to scan_limit_class (RESTRICTED),
        with `scan_limit` among the detected: what was not scanned is never taken as clean.

Example:
    policies:
      privacy:
        type: privacy
        parameters:
          unspecified_class: INTERNAL
          trust:
            CONFIDENTIAL: [edge, self_hosted]
          regions:
            RESTRICTED: [local, eu-west-1]
          detectors:
            phone: null
            email: INTERNAL
          patterns:
            - {name: employee_id, regex: 'EMP-\\d{6}', class: CONFIDENTIAL}
          max_scan_chars: 1000000
          scan_limit_class: CONFIDENTIAL
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from policies.detectors import DETECTORS, Detector, detect
from policies.linear_regex import compile_linear
from policies.params import Params
from router.core.backend_config import Trust
from router.core.framework import BackendView, RequestContext
from router.core.guard import third_party_forbidden  # noqa: F401 - re-exported: part of the policy API
from router.core.types import Privacy

CLASSES = (Privacy.PUBLIC, Privacy.INTERNAL, Privacy.CONFIDENTIAL, Privacy.RESTRICTED)
TRUST_LEVELS: tuple[Trust, ...] = ("edge", "self_hosted", "third_party")
DEFAULT_TRUST: dict[Privacy, tuple[Trust, ...]] = {
    Privacy.PUBLIC: TRUST_LEVELS,
    Privacy.INTERNAL: TRUST_LEVELS,
    Privacy.CONFIDENTIAL: ("edge", "self_hosted"),
    Privacy.RESTRICTED: ("edge", "self_hosted"),
}
DEFAULT_DETECTORS: dict[str, Privacy] = {
    "email": Privacy.CONFIDENTIAL,
    "phone": Privacy.CONFIDENTIAL,
    "card": Privacy.RESTRICTED,
    "iban": Privacy.RESTRICTED,
    "secret": Privacy.RESTRICTED,
    "national_id": Privacy.RESTRICTED,
}
# A request longer than max_scan_chars is scanned up to it and "detected" as this.
SCAN_LIMIT = "scan_limit"
DEFAULT_MAX_SCAN_CHARS = 2_000_000


class PrivacyPolicy:
    """Raises the class of every request from its content; filters by trust and region.

    A guard: it binds every request, whatever the profile (router/core/framework.py)."""

    binding = True

    def __init__(
        self,
        name: str,
        trust: Mapping[Privacy, Sequence[str]] | None = None,
        regions: Mapping[Privacy, Sequence[str]] | None = None,
        unspecified_class: Privacy = Privacy.INTERNAL,
        detectors: Sequence[tuple[Detector, Privacy]] = (),
        max_scan_chars: int = DEFAULT_MAX_SCAN_CHARS,
        scan_limit_class: Privacy = Privacy.RESTRICTED,
    ) -> None:
        self.name = name
        allowed = {**DEFAULT_TRUST, **(trust or {})}
        self.trust = {c: tuple(t for t in TRUST_LEVELS if t in allowed[c]) for c in CLASSES}
        # Never third_party for RESTRICTED, even when constructed without create()'s checks.
        self.trust[Privacy.RESTRICTED] = tuple(
            t for t in self.trust[Privacy.RESTRICTED] if t != "third_party"
        )
        self.regions = {c: tuple(r) for c, r in (regions or {}).items()}
        self.unspecified_class = unspecified_class
        self.detectors = tuple(d for d, _ in detectors)
        self.raises_to = {d.name: c for d, c in detectors}
        self.max_scan_chars = max_scan_chars
        self.raises_to[SCAN_LIMIT] = scan_limit_class

    def prepare(self, ctx: RequestContext) -> RequestContext:
        """The higher of the claimed class and the one the detected content calls for."""
        found = self.scan(ctx.request.texts())  # tool calls, results and schemas included
        # Never below the claim, nor below what an earlier preparer decided (policies compose).
        privacy = max(self._claimed(ctx), ctx.privacy)
        if not found:
            return ctx if privacy == ctx.privacy else ctx.classified(privacy, ctx.detected)
        privacy = max(privacy, *(self.raises_to[n] for n in found))
        detected = (*ctx.detected, *(n for n in found if n not in ctx.detected))
        return ctx.classified(privacy, detected)

    def _claimed(self, ctx: RequestContext) -> Privacy:
        """The request's own class; unspecified_class for an UNSPECIFIED one."""
        claimed = ctx.request.privacy
        return self.unspecified_class if claimed == Privacy.UNSPECIFIED else claimed

    def scan(self, texts: Iterable[str]) -> list[str]:
        """The detectors that fire on the first max_scan_chars characters of `texts` (joined as
        detect() joins them), and SCAN_LIMIT when there are more: the scan time is bounded."""
        text = "\n\n".join(texts)
        found = detect([text[: self.max_scan_chars]], self.detectors)
        return [*found, SCAN_LIMIT] if len(text) > self.max_scan_chars else found

    def filter(self, ctx: RequestContext, backend: BackendView) -> str | None:
        """Why `backend` may not serve this class of request, or None."""
        privacy = self.unspecified_class if ctx.privacy == Privacy.UNSPECIFIED else ctx.privacy
        trust = backend.config.effective_trust
        allowed = self.trust[privacy]
        if trust not in allowed:  # which covers third_party_forbidden(privacy, backend)
            return (
                f"{self._subject(ctx, privacy)} may not use a {trust} backend; "
                f"allowed: {', '.join(allowed) or 'none'}"
            )
        regions = self.regions.get(privacy)
        if regions is not None and backend.config.region not in regions:
            return (
                f"{self._subject(ctx, privacy)} may not use a backend in region "
                f"{backend.config.region!r}; allowed regions: {', '.join(regions)}"
            )
        return None

    def _subject(self, ctx: RequestContext, privacy: Privacy) -> str:
        """'RESTRICTED request', with the detectors that raised it to that class if any did."""
        raised_by = [
            n
            for n in ctx.detected
            if self.raises_to.get(n) == privacy and privacy > self._claimed(ctx)
        ]
        detected = f" (detected: {', '.join(raised_by)})" if raised_by else ""
        return f"{privacy.name} request{detected}"


# --- parameters -------------------------------------------------------------------------------

_CLASS_NAMES = ", ".join(c.name for c in CLASSES)


def _privacy_class(value: object) -> Privacy:
    if isinstance(value, Privacy) and value in CLASSES:
        return value
    if isinstance(value, str) and value.upper() in _CLASS_NAMES.split(", "):
        return Privacy[value.upper()]
    raise ValueError(f"unknown privacy class {value!r} (known: {_CLASS_NAMES})")


def _detector_class(value: object) -> Privacy | None:
    if value is None or value is False:
        return None
    if value is True:
        raise ValueError("expected a privacy class, or null/false to turn the detector off")
    return _privacy_class(value)


def _builtin_detector(name: str) -> str:
    if name in DETECTORS:
        return name
    close = difflib.get_close_matches(name, DETECTORS, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"unknown detector {name!r}{hint} (known: {', '.join(DETECTORS)})")


ClassName = Annotated[Privacy, BeforeValidator(_privacy_class)]
DetectorClass = Annotated[Privacy | None, BeforeValidator(_detector_class)]
DetectorName = Annotated[str, AfterValidator(_builtin_detector)]


class PatternParams(Params):
    name: str = Field(min_length=1)
    regex: str = Field(min_length=1)
    class_: ClassName = Field(alias="class")

    @field_validator("regex")
    @classmethod
    def _compiles(cls, regex: str, info: ValidationInfo) -> str:
        try:
            compile_linear(regex)
        except ValueError as exc:
            name = info.data.get("name", "?")
            raise ValueError(f"pattern {name!r}: invalid regex {regex!r}: {exc}") from None
        return regex


class PrivacyParams(Params):
    trust: dict[ClassName, list[Trust]] = Field(default_factory=dict)
    regions: dict[ClassName, list[Annotated[str, Field(min_length=1)]]] = Field(
        default_factory=dict
    )
    unspecified_class: ClassName = Privacy.INTERNAL
    detectors: dict[DetectorName, DetectorClass] = Field(default_factory=dict)
    patterns: list[PatternParams] = Field(default_factory=list)
    max_scan_chars: int = Field(DEFAULT_MAX_SCAN_CHARS, ge=1)
    scan_limit_class: ClassName = Privacy.RESTRICTED

    @field_validator("trust", "regions", mode="before")
    @classmethod
    def _one_entry_per_class(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            seen: dict[str, object] = {}
            for key in value:
                upper = key.upper() if isinstance(key, str) else key
                if upper in seen:
                    raise ValueError(f"{seen[upper]!r} and {key!r} name the same class")
                seen[upper] = key
        return value

    @field_validator("trust")
    @classmethod
    def _restricted_stays_private(
        cls, trust: dict[Privacy, list[Trust]]
    ) -> dict[Privacy, list[Trust]]:
        for privacy, levels in trust.items():
            if not levels:
                raise ValueError(f"{privacy.name}: allow at least one trust level")
        if "third_party" in trust.get(Privacy.RESTRICTED, ()):
            raise ValueError(
                "RESTRICTED: third_party is never allowed (a RESTRICTED request must not reach "
                "a third-party backend)"
            )
        return trust

    @field_validator("regions")
    @classmethod
    def _regions_listed(cls, regions: dict[Privacy, list[str]]) -> dict[Privacy, list[str]]:
        for privacy, names in regions.items():
            if not names:
                raise ValueError(f"{privacy.name}: list at least one region (or leave it out)")
        return regions

    @field_validator("patterns")
    @classmethod
    def _unique_names(cls, patterns: list[PatternParams]) -> list[PatternParams]:
        seen = {*DETECTORS, SCAN_LIMIT}
        for i, pattern in enumerate(patterns):
            if pattern.name in seen:
                raise ValueError(f"pattern {i} is named {pattern.name!r}, a name already taken")
            seen.add(pattern.name)
        return patterns


def _describe(exc: ValidationError) -> str:
    """'path: problem' for each error (as policies.params.parse, but every error, keys as
    written, and a suggestion for a misspelt parameter)."""
    parts = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"] if p != "[key]"]
        reason = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            known = PrivacyParams.model_fields if len(loc) == 1 else PatternParams.model_fields
            names = [f.alias or n for n, f in known.items()]
            close = difflib.get_close_matches(loc[-1], names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            reason = f"unknown parameter{hint} (known: {', '.join(names)})"
        parts.append(f"{'.'.join(loc)}: {reason}" if loc else reason)
    return "; ".join(parts)


def create(name: str, parameters: Mapping[str, Any]) -> PrivacyPolicy:
    """Builds the policy; raises ValueError naming each bad parameter and what is wrong."""
    try:
        params = PrivacyParams.model_validate(dict(parameters or {}))
    except ValidationError as exc:
        raise ValueError(_describe(exc)) from None
    raises_to = {**DEFAULT_DETECTORS, **params.detectors}
    detectors = [(DETECTORS[n], c) for n, c in raises_to.items() if c is not None]
    detectors += [(Detector(p.name, p.regex), p.class_) for p in params.patterns]
    return PrivacyPolicy(
        name,
        trust=params.trust,
        regions=params.regions,
        unspecified_class=params.unspecified_class,
        detectors=detectors,
        max_scan_chars=params.max_scan_chars,
        scan_limit_class=params.scan_limit_class,
    )
