"""Which image URLs batchgen fetches: a pure policy, so every rule is tested with plain strings.

A result's `output` is a URL the *server* chose, normally on a CDN: another host than the API is
normal and fine, because media is fetched without the API key. What is not fine is an answer (from
a compromised or spoofed server, a hostile proxy, a typo'd base URL) that turns batchgen into a
fetcher of things on the user's own machine or network. The rules, applied to the result URL and
again to every redirect hop (`media.py` follows redirects by hand for that reason):

1. Only `http` and `https`, with a host, and no user:password part.
2. Never link-local addresses (169.254.0.0/16, fe80::/10: where cloud metadata endpoints such as
   169.254.169.254 hand out credentials), nor unspecified, multicast or reserved ones.
3. Loopback (127.0.0.0/8, ::1, `localhost`) and private addresses (10/8, 172.16/12, 192.168/16,
   100.64/10, fc00::/7) only when the API itself is on an address of the same kind (the local
   emulator; a gateway on the LAN), or when the caller allows private media explicitly.
4. Public addresses and host names pass here; a name is checked again once resolved (the resolver
   guard in `media.py`), so `http://metadata.example/` pointing at 169.254.169.254 is refused too.
"""

from __future__ import annotations

import ipaddress
from enum import Enum
from typing import Final
from urllib.parse import urlsplit

__all__ = ["Scope", "address_problem", "address_scope", "host_scope", "media_url_problem"]

SCHEMES: Final = frozenset({"http", "https"})


class Scope(Enum):
    PUBLIC = "public"
    PRIVATE = "private"
    LOOPBACK = "loopback"
    FORBIDDEN = "forbidden"  # link-local (metadata), unspecified, multicast, reserved


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def address_scope(ip: IPAddress) -> Scope:
    """The kind of network an address is on (IPv4-mapped IPv6 counts as its IPv4 address)."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:  # before is_reserved: ::1 is in the reserved ::/8
        return Scope.LOOPBACK
    if ip.is_link_local or ip.is_unspecified or ip.is_multicast or ip.is_reserved:
        return Scope.FORBIDDEN
    return Scope.PUBLIC if ip.is_global else Scope.PRIVATE


def host_scope(host: str) -> Scope | None:
    """The scope of an address literal or `localhost`; None for any other name (not resolved)."""
    name = host.strip("[]").lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return Scope.LOOPBACK
    try:
        return address_scope(ipaddress.ip_address(name.split("%")[0]))  # fe80::1%eth0
    except ValueError:
        return None


def _api_scope(api_root: str) -> Scope:
    host = urlsplit(api_root).hostname or ""
    return host_scope(host) or Scope.PUBLIC


def address_problem(
    scope: Scope | None, api_root: str, *, allow_private: bool = False
) -> str | None:
    """Why media on an address of `scope` may not be fetched for this API, or None.

    `scope` None (a host name, not yet resolved) passes: the resolver guard decides later.
    """
    if scope is None or scope is Scope.PUBLIC:
        return None
    if scope is Scope.FORBIDDEN:
        return (
            "a link-local, unspecified, multicast or reserved address (cloud metadata lives there)"
        )
    if allow_private or scope is _api_scope(api_root):
        return None
    return (
        f"a {scope.value} address, while the API is not on one "
        "(if intended: --private-media, or MediaLimits(allow_private=True))"
    )


def media_url_problem(url: str, api_root: str, *, allow_private: bool = False) -> str | None:
    """Why batchgen refuses to fetch the image at `url` for the API at `api_root`, or None."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return "the image URL is malformed"
    if parts.scheme.lower() not in SCHEMES:
        scheme = parts.scheme or "no scheme"
        return f"the image URL uses {scheme!r}; only http and https are fetched"
    if not host:
        return "the image URL has no host"
    if parts.username is not None or parts.password is not None:
        return "the image URL carries a user name or password"
    problem = address_problem(host_scope(host), api_root, allow_private=allow_private)
    return f"the image URL points at {problem}" if problem else None
