"""Errors the router raises; each carries a `Code`, which the faces map to their statuses."""

from __future__ import annotations

import enum


class Code(enum.StrEnum):
    """Why a request failed; the names (and values) are gRPC's status codes."""

    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
    UNAVAILABLE = "UNAVAILABLE"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    CANCELLED = "CANCELLED"
    INTERNAL = "INTERNAL"


class RouterError(Exception):
    """Base class; `code` names the status the faces answer with."""

    code: Code = Code.INTERNAL


class InvalidArgument(RouterError):
    """A request field is wrong; the message names the field."""

    code = Code.INVALID_ARGUMENT

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason

    def within(self, prefix: str) -> InvalidArgument:
        """The same error for a field nested under `prefix` (e.g. "requests[2].")."""
        return InvalidArgument(prefix + self.field, self.reason)


class NoFeasibleBackend(RouterError):
    """Every backend was excluded; the message says which policy excluded which backend.

    FAILED_PRECONDITION, or RESOURCE_EXHAUSTED when capacity or budget is what stood in the way.
    """

    def __init__(self, rejections: list[tuple[str, str, str]], resource: bool = False) -> None:
        parts = [
            f"{backend} excluded by {policy}: {reason}" for backend, policy, reason in rejections
        ]
        super().__init__("no feasible backend: " + "; ".join(parts))
        self.rejections = rejections
        self.code = Code.RESOURCE_EXHAUSTED if resource else Code.FAILED_PRECONDITION


class ResourceExhausted(RouterError):
    """A queue, capacity or budget limit refused the request."""

    code = Code.RESOURCE_EXHAUSTED


class BackendUnavailable(RouterError):
    """A backend failed while serving the request.

    `retry_after_s` is set when the backend asked to be left alone for a while (HTTP 429).
    """

    code = Code.UNAVAILABLE

    def __init__(self, backend: str, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(f"backend {backend}: {reason}")
        self.backend = backend
        self.reason = reason
        self.retry_after_s = retry_after_s


class StateUnavailable(RouterError):
    """The shared state store (Redis) is unreachable and this kind of state fails closed.

    Not a backend's failure: no other backend would fare better, so it is not retried."""

    code = Code.UNAVAILABLE

    def __init__(self, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


class RequestFailed(RouterError):
    """A request failed for good; carries the status code of the failure behind it, and the
    Retry-After the last backend asked for, if any."""

    def __init__(self, code: str, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.code = Code(code)
        self.retry_after_s = retry_after_s


class ConfigError(Exception):
    """A configuration file is invalid; the message names the file, the YAML path and the reason."""

    def __init__(self, file: str, path: str, reason: str, line: int = 0, column: int = 0) -> None:
        where = f"{file}:{line}:{column}" if line else file
        super().__init__(f"{where}: {path or '<root>'}: {reason}")
        self.file = file
        self.path = path
        self.reason = reason
        self.line = line
        self.column = column
