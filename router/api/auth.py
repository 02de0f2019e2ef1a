"""Tenant authentication: the tenant of a TokenRouter call comes from its API key.

With `server.tenant_keys_file` set, every TokenRouter call (Generate, Route, RouteBatch,
ListBackends) needs the metadata `authorization: Bearer <key>`. A missing, malformed or unknown
key gets UNAUTHENTICATED; a request that names another tenant than its key's gets
PERMISSION_DENIED (in RouteBatch: any entry); a request that names none gets the key's tenant.
Keys are compared in constant time and never appear in a log line or an error message.
The public id of the key a gRPC call authenticated with is in `CALLER_KEY` for the rest of the
call (the gate sets it; the servicer puts it on the request as `api_key`, which per-key rate
limits count by).
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterable
from contextvars import ContextVar

import structlog

from router.api.keys import KeyEntry, hash_key, key_id, load_keys
from router.core.errors import Code, RouterError

log = structlog.get_logger("tokenrouter")

# The public id of the API key of the gRPC call being served ("" with tenant keys off). A
# context variable: the gate sets it in the call's task, before the servicer runs.
CALLER_KEY: ContextVar[str] = ContextVar("tokenrouter_caller_key", default="")


class Unauthenticated(RouterError):
    """No usable credentials."""

    code = Code.UNAUTHENTICATED


class PermissionDenied(RouterError):
    """Credentials that do not cover what the request asks for."""

    code = Code.PERMISSION_DENIED


def bearer(metadata: Iterable[tuple[str, str | bytes]] | None) -> str | None:
    """The bearer token in `authorization` metadata, or None when there is none."""
    for name, value in metadata or ():
        if name == "authorization" and isinstance(value, str):
            scheme, _, token = value.strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


class TenantAuth:
    """The keys of one keys file; `reload()` re-reads it and keeps the old keys on error."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(path)
        self._keys: dict[str, KeyEntry] = load_keys(path)

    @property
    def count(self) -> int:
        return len(self._keys)

    def reload(self) -> None:
        """Re-reads the keys file; raises ConfigError and keeps the current keys when it is bad."""
        keys = load_keys(self.path)
        self._keys = keys
        log.info("tenant keys reloaded", keys_file=self.path, keys=len(keys))

    def tenant_of(self, metadata: Iterable[tuple[str, str | bytes]] | None) -> str:
        """The tenant whose key the call carries; raises Unauthenticated otherwise."""
        return self.caller(metadata).tenant

    def caller(self, metadata: Iterable[tuple[str, str | bytes]] | None) -> KeyEntry:
        """The key the call carries (its id and tenant); raises Unauthenticated otherwise."""
        key = bearer(metadata)
        if key is None:
            raise Unauthenticated("missing API key: send metadata authorization: Bearer <key>")
        ident = key_id(key)
        entry = self._keys.get(ident) if ident else None
        presented = hash_key(key).encode()
        expected = entry.sha256.encode() if entry else b"0" * len(presented)
        if not hmac.compare_digest(presented, expected) or entry is None:
            raise Unauthenticated("unknown API key")
        return entry

    def check(self, claimed: str, tenant: str, field: str = "tenant") -> str:
        """The tenant a request runs as: its key's; naming another one is PERMISSION_DENIED."""
        if claimed and claimed != tenant:
            raise PermissionDenied(f"{field}: this API key does not belong to the named tenant")
        return tenant
