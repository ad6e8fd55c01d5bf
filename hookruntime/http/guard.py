"""The SSRF guard: receivers may only be public addresses, checked at connect time.

A host name is resolved once per connection by :class:`GuardedResolver`, every address
it resolves to is checked, and aiohttp connects to the checked addresses (keeping the
Host header and the TLS server name). A name that answers a public address today and
a loopback one tomorrow (DNS rebinding) is refused on the day it points inward. IP
literals, in any spelling ``inet_aton`` accepts (``2130706433``, ``0x7f.1``,
``017700000001``), are checked before any connection. Registration-time checks give
early, clear errors; this is the defence.

``allow_private=True`` (``HOOKRUNTIME_ALLOW_PRIVATE_TARGETS=1``) turns the guard off,
for development and tests against loopback receivers.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from ..errors import TargetBlocked

__all__ = ["GuardedResolver", "blocked_reason", "check_url", "literal_address"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")


def blocked_reason(address: IPAddress) -> str | None:
    """Why ``address`` may not be a receiver, or None when it is a public address."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            reason = blocked_reason(embedded)
            return f"{address} embeds {embedded}: {reason}" if reason else None
    for test, label in (
        (address.is_loopback, "loopback"),
        (address.is_unspecified, "unspecified"),
        (address.is_link_local, "link-local"),
        (address.is_multicast, "multicast"),
        (address in _CGNAT if address.version == 4 else False, "carrier-grade NAT"),
        (address.is_private, "private"),
        (address.is_reserved, "reserved"),
        (not address.is_global, "not a public address"),
    ):
        if test:
            return f"{address} is {label}"
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside IPv4-mapped, NAT64, 6to4 and Teredo forms."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64 or address in _NAT64_LOCAL:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        server, client = address.teredo
        return client if blocked_reason(client) else server
    compatible = int(address)
    if compatible >> 32 == 0 and compatible > 1:  # deprecated IPv4-compatible ::a.b.c.d
        return ipaddress.IPv4Address(compatible)
    return None


def literal_address(host: str) -> IPAddress | None:
    """``host`` as an IP address if it is one in any accepted spelling, else None."""
    text = host.strip("[]")
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        pass
    try:  # the legacy forms: 2130706433, 0x7f.1, 017700000001, 127.1
        return ipaddress.IPv4Address(socket.inet_aton(text))
    except (OSError, ValueError):
        return None


def check_url(url: str) -> None:
    """Refuse a URL whose host is a non-public IP literal (names are checked on connect)."""
    host = urlsplit(url).hostname or ""
    address = literal_address(host)
    if host.lower() in ("localhost", "localhost.") or host.lower().endswith(".localhost"):
        raise TargetBlocked(f"{host} is loopback")
    if address is not None and (reason := blocked_reason(address)):
        raise TargetBlocked(reason)


class GuardedResolver(AbstractResolver):
    """Resolves with ``base`` (the system resolver by default) and refuses any name that
    resolves to a non-public address."""

    def __init__(self, base: AbstractResolver | None = None) -> None:
        self._base = base or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._base.resolve(host, port, family)
        for result in results:
            reason = blocked_reason(ipaddress.ip_address(result["host"].split("%", 1)[0]))
            if reason:
                raise TargetBlocked(f"{host} resolves to {reason}")
        return results

    async def close(self) -> None:
        await self._base.close()
