"""Tenant API keys: the keys file format and the helpers behind `tokenrouter keys`.

A key looks like `trk_<id>_<secret>`: `id` (12 hex digits) is public and names the key in files
and logs; `secret` is 256 random bits. The file stores only the SHA-256 of each whole key, so a
stolen file gives no usable key, and a key is shown once, when it is created:

    # tokenrouter tenant API keys (hashes only); managed with `tokenrouter keys`
    keys:
    - id: 3f9a0c1d2b4e
      tenant: acme
      sha256: 5d41402abc4b2a76b9719d911017c592...
      created: '2025-01-31T12:00:00Z'

Writes go to a temporary file renamed over the old one, so a server watching the file never
reads half of it.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from router.core.errors import ConfigError

PREFIX = "trk_"
MAX_KEY_CHARS = 128
MAX_FILE_BYTES = 16 * 1024 * 1024
TENANT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,127}")
_ID_RE = re.compile(r"[0-9a-f]{12}")
_SHA_RE = re.compile(r"[0-9a-f]{64}")
HEADER = "# tokenrouter tenant API keys (hashes only); managed with `tokenrouter keys`\n"


@dataclass(frozen=True, slots=True)
class KeyEntry:
    """One stored key: its public id, its tenant and the SHA-256 of the whole key."""

    id: str
    tenant: str
    sha256: str
    created: str = ""


def hash_key(key: str) -> str:
    """The hex SHA-256 of a key, as stored in the keys file."""
    return hashlib.sha256(key.encode()).hexdigest()


def key_id(key: str) -> str | None:
    """The public id inside a well-formed key, else None (never raises on hostile input)."""
    if len(key) > MAX_KEY_CHARS or not key.startswith(PREFIX):
        return None
    ident, sep, secret = key[len(PREFIX) :].partition("_")
    if not sep or not secret or not _ID_RE.fullmatch(ident):
        return None
    return ident


def new_key() -> str:
    """A fresh random key."""
    return f"{PREFIX}{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"


def load_keys(path: str | os.PathLike[str]) -> dict[str, KeyEntry]:
    """Reads a keys file: id -> entry. A missing file is an error; an empty one has no keys."""
    source = str(path)
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(source, "", f"cannot read keys file: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError(source, "", f"keys file is larger than {MAX_FILE_BYTES} bytes")
    try:
        data = yaml.safe_load(raw.decode("utf-8")) or {}
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(source, "", f"not a keys file: {type(exc).__name__}") from None
    return _entries(data, source)


def _entries(data: Any, source: str) -> dict[str, KeyEntry]:
    if not isinstance(data, dict) or set(data) - {"keys"}:
        raise ConfigError(source, "", "a keys file is a mapping with one key, `keys`")
    rows = data.get("keys") or []
    if not isinstance(rows, list):
        raise ConfigError(source, "keys", "must be a list")
    entries: dict[str, KeyEntry] = {}
    for i, row in enumerate(rows):
        where = f"keys.{i}"
        if not isinstance(row, dict) or not {"id", "tenant", "sha256"} <= set(row):
            raise ConfigError(source, where, "needs id, tenant and sha256")
        entry = KeyEntry(
            str(row["id"]), str(row["tenant"]), str(row["sha256"]), str(row.get("created", ""))
        )
        if not _ID_RE.fullmatch(entry.id):
            raise ConfigError(source, f"{where}.id", "must be 12 lowercase hex digits")
        if entry.id in entries:
            raise ConfigError(source, f"{where}.id", f"duplicate key id {entry.id}")
        if not TENANT_RE.fullmatch(entry.tenant):
            raise ConfigError(source, f"{where}.tenant", "1-128 of A-Z a-z 0-9 . _ @ -")
        if not _SHA_RE.fullmatch(entry.sha256):
            raise ConfigError(source, f"{where}.sha256", "must be 64 lowercase hex digits")
        entries[entry.id] = entry
    return entries


def create_key(path: str | os.PathLike[str], tenant: str) -> tuple[KeyEntry, str]:
    """Adds a new key for `tenant` to the file (created if missing); returns it and the key."""
    if not TENANT_RE.fullmatch(tenant):
        raise ValueError("tenant: 1-128 of A-Z a-z 0-9 . _ @ -, starting with a letter or digit")
    entries = load_keys(path) if Path(path).exists() else {}
    key = new_key()
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    entry = KeyEntry(key_id(key) or "", tenant, hash_key(key), created)
    entries[entry.id] = entry
    write_keys(path, entries.values())
    return entry, key


def revoke_key(path: str | os.PathLike[str], ident: str) -> KeyEntry | None:
    """Removes the key with public id `ident`; returns it, or None when there is none."""
    entries = load_keys(path)
    entry = entries.pop(ident, None)
    if entry is not None:
        write_keys(path, entries.values())
    return entry


def write_keys(path: str | os.PathLike[str], entries: Any) -> None:
    """Writes entries atomically (a temporary file in the same folder, renamed over), mode 0600."""
    target = Path(path)
    rows = [
        {"id": e.id, "tenant": e.tenant, "sha256": e.sha256, "created": e.created} for e in entries
    ]
    text = HEADER + yaml.safe_dump({"keys": rows}, sort_keys=False)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
