"""Network addresses at the edge: bind addresses, loopback checks and gRPC peer strings.

gRPC names a bind address `host:port` with IPv6 hosts in brackets (`[::1]:50051`) and a Unix
socket `unix:/path`. It reports peers as `ipv4:127.0.0.1:5000`, `ipv6:[::1]:5000` (older cores
and some transports percent-encode the brackets: `ipv6:%5B::1%5D:5000`) or `unix:/path`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote

PeerKind = Literal["ipv4", "ipv6", "unix", "other"]


@dataclass(frozen=True, slots=True)
class Peer:
    """A parsed gRPC peer: its transport and, for IP peers, the address."""

    kind: PeerKind
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None

    @property
    def is_loopback(self) -> bool:
        """True for 127.0.0.0/8, ::1 and IPv4-mapped loopback; Unix sockets are not IP peers."""
        return self.ip is not None and _loopback_ip(self.ip)


def is_unix(host: str) -> bool:
    """True when `host` names a Unix socket (`unix:/path` or `unix-abstract:name`)."""
    return host.startswith(("unix:", "unix-abstract:"))


def bind_address(host: str, port: int) -> str:
    """The gRPC bind address for `host` and `port`: IPv6 literals in brackets, Unix as given."""
    if is_unix(host):
        return host
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def host_is_loopback(host: str) -> bool:
    """True when binding `host` only accepts connections from this machine.

    `localhost`, 127.0.0.0/8, ::1 and Unix sockets are local; wildcards (`0.0.0.0`, `::`), other
    addresses and other host names are not.
    """
    if is_unix(host):
        return True
    host = host.strip().removeprefix("[").removesuffix("]")
    if host.lower() == "localhost":
        return True
    try:
        return _loopback_ip(ipaddress.ip_address(host))
    except ValueError:
        return False


def parse_peer(peer: str) -> Peer:
    """Parses what `context.peer()` returns; anything unrecognised is kind "other"."""
    scheme, _, rest = unquote(peer or "").partition(":")
    if scheme in ("unix", "unix-abstract"):
        return Peer("unix")
    if scheme not in ("ipv4", "ipv6"):
        return Peer("other")
    if rest.startswith("["):
        host = rest[1:].partition("]")[0]
    elif scheme == "ipv4":
        host = rest.rpartition(":")[0] or rest
    else:
        host = rest.rpartition(":")[0] if rest.count(":") > 7 else rest
    try:
        ip = ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return Peer("other")
    return Peer("ipv4" if ip.version == 4 else "ipv6", ip)


def _loopback_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback
