"""What a config sent through the admin API may do with secrets.

A backend's `api_key_env` makes the router read that environment variable and send its value to
the backend's `base_url` (requests and health probes). A config text sent to `ReloadConfig` may
therefore only
- read a variable the running config already reads, or one `server.reload_allow.env` lists, and
- send it to an origin (scheme, host, port) that variable already goes to in the running config,
  or to a host `server.reload_allow.hosts` lists.
`reload_allow` comes from the config the server started with, never from the sent text. Configs
read from the file (file watch, SIGHUP, ReloadConfig with no text) are the operator's and are
not restricted.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from router.config import Config, HttpBackendCommon, LoadedConfig, ReloadAllowConfig

Origin = tuple[str, str, int | None]


def origin(url: str) -> Origin:
    """(scheme, host, port) of a URL, lower-cased, with the scheme's default port filled in."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    port = port or {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port


def secrets_in(config: Config) -> dict[str, set[Origin]]:
    """Environment variable -> the origins its value is sent to, under `config`."""
    used: dict[str, set[Origin]] = {}
    for backend in config.backends.values():
        if isinstance(backend, HttpBackendCommon) and backend.api_key_env:
            used.setdefault(backend.api_key_env, set()).add(origin(backend.base_url))
    return used


def check_sent_config(sent: LoadedConfig, running: Config, allow: ReloadAllowConfig) -> None:
    """Raises ConfigError naming the backend and field when `sent` reaches for a new secret."""
    known = secrets_in(running)
    allowed_env = set(allow.env)
    allowed_hosts = {h.lower() for h in allow.hosts}
    for name, backend in sent.config.backends.items():
        if not isinstance(backend, HttpBackendCommon) or not backend.api_key_env:
            continue
        env = backend.api_key_env
        if env not in known and env not in allowed_env:
            raise sent.error(
                ("backends", name, "api_key_env"),
                f"a config sent through the admin API may not read environment variable {env!r}:"
                " the running config does not use it and server.reload_allow.env does not list it",
            )
        where = origin(backend.base_url)
        if where not in known.get(env, set()) and where[1] not in allowed_hosts:
            raise sent.error(
                ("backends", name, "base_url"),
                f"a config sent through the admin API may not send {env} to {where[1]!r}: "
                "the running config does not, and server.reload_allow.hosts does not list it",
            )
