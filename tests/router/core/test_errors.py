"""Error codes: one enum, every member a gRPC status."""

from __future__ import annotations

import grpc

from router.api.auth import PermissionDenied, Unauthenticated
from router.core.errors import (
    BackendUnavailable,
    Code,
    InvalidArgument,
    NoFeasibleBackend,
    RequestFailed,
    ResourceExhausted,
    RouterError,
)


def test_every_code_is_a_grpc_status_and_every_error_carries_one():
    """Each Code names a gRPC status, and each router error's code is a Code member."""
    assert all(isinstance(getattr(grpc.StatusCode, c.name), grpc.StatusCode) for c in Code)
    errors = [
        RouterError("x"),
        InvalidArgument("f", "r"),
        NoFeasibleBackend([], resource=True),
        NoFeasibleBackend([]),
        ResourceExhausted("x"),
        BackendUnavailable("b", "r"),
        RequestFailed("UNAVAILABLE", "m"),
        Unauthenticated("x"),
        PermissionDenied("x"),
    ]
    assert [type(e.code) for e in errors] == [Code] * len(errors)
    assert [e.code for e in errors[2:4]] == [Code.RESOURCE_EXHAUSTED, Code.FAILED_PRECONDITION]
