"""The policy contracts' data: what a preparer's copy of a request context keeps."""

from __future__ import annotations

import dataclasses

from router.core.framework import RequestContext


def test_classified_keeps_every_other_field():
    """classified() replaces the class and the detectors and keeps every other field as it is,
    as dataclasses.replace() does: a field it forgot would fall back to its default."""
    marks = {f.name: object() for f in dataclasses.fields(RequestContext)}
    ctx = RequestContext(**marks)
    privacy, detected = object(), object()
    got = ctx.classified(privacy, detected)  # type: ignore[arg-type]
    want = dataclasses.replace(ctx, privacy=privacy, detected=detected)
    for f in dataclasses.fields(RequestContext):
        assert getattr(got, f.name) is getattr(want, f.name), f.name
