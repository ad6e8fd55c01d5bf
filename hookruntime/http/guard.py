"""The SSRF guard: receivers may only be public addresses, checked at connect time.

The host judged is the one the client connects to: the URL parsed as aiohttp parses it
(yarl, with its IDNA/NFKC normalisation), so a host written in fullwidth digits or with
ideographic full stops is judged as the ``127.0.0.1`` it becomes, never as the string it
was written as. Hosts
that are not plain, well-formed names or IP literals are refused outright
(:func:`host_problem`).

A host name is resolved once per connection by :class:`GuardedResolver`, every address
it resolves to is checked, and aiohttp connects to the checked addresses (keeping the
Host header and the TLS server name). A name that answers a public address today and
a loopback one tomorrow (DNS rebinding) is refused on the day it points inward. IP
literals, in any spelling ``inet_aton`` accepts (``2130706433``, ``0x7f.1``,
``017700000001``), are checked before any connection. Last, on aiohttp,
:func:`guarded_socket` checks the very address each socket is about to connect to, so a
host that slipped past every check above still reaches nothing but a public address
(httpx checks the connected peer; pyreqwest connects only to the pinned, checked
address: :mod:`.pins`). Registration-time
checks give early, clear errors; these are the defence.

``allow_private=True`` (``HOOKRUNTIME_ALLOW_PRIVATE_TARGETS=1``) turns the guard off,
for development and tests against loopback receivers.
"""

from __future__ import annotations

import errno
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Sequence
from functools import lru_cache

import anyio
from aiohappyeyeballs import AddrInfoType
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from ..errors import ConnectError, TargetBlocked

__all__ = [
    "GuardedResolver",
    "PeerRefused",
    "Resolve",
    "blocked_reason",
    "check_url",
    "guarded_socket",
    "host_problem",
    "literal_address",
    "system_resolve",
    "target_host",
]

#: Answers the addresses of ``(host, port)``: the httpx and pyreqwest backends resolve
#: names themselves, with this (the system resolver by default), to check and pin them.
Resolve = Callable[[str, int], Awaitable[Sequence[str]]]


async def system_resolve(host: str, port: int) -> list[str]:
    try:
        answers = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ConnectError(f"cannot resolve {host}: {exc}") from exc
    return [str(sockaddr[0]) for *_, sockaddr in answers]


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
# Deprecated (RFC 3879) but still routed inside some networks; Python counts it global.
_SITE_LOCAL = ipaddress.ip_network("fec0::/10")
_LABEL = re.compile(r"^[a-z0-9_-]{1,63}$")
_NUMERIC = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")


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
        (address in _SITE_LOCAL if address.version == 6 else False, "site-local"),
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


def target_host(url: str) -> str:
    """The host the client will connect to: ``url`` parsed as aiohttp parses it, IDNA-
    encoded, without brackets. Raises :class:`TargetBlocked` when there is none."""
    try:
        host = URL(url).raw_host
    except (TypeError, ValueError) as exc:
        raise TargetBlocked(f"URL is malformed: {exc}") from exc
    if not host:
        raise TargetBlocked("URL has no host")
    return host


def host_problem(url: str) -> str | None:
    """Why the host of ``url`` is not a plain, well-formed host name or IP literal, or None.

    A host written in non-ASCII is accepted only where it stays a real international
    name after normalisation (an ``xn--`` label); one whose characters stand in for
    ASCII digits, letters or dots is refused, whatever it would become.
    """
    try:
        parsed = URL(url)
        as_written = URL(url, encoded=True)
    except (TypeError, ValueError) as exc:
        return f"URL is malformed: {exc}"
    host, written = parsed.raw_host, as_written.raw_host
    if not written or not host:
        return "URL has no host"
    if parsed.user is not None or parsed.password is not None:
        return "URL must not carry credentials; send them as a custom header"
    if ":" in host or (as_written.raw_authority or "").rpartition("@")[2].startswith("["):
        return _ipv6_problem(host)
    if any(ch.isspace() for ch in written):
        return "host must not contain whitespace"
    if "%" in written:
        return f"host {written!r} must not be percent-encoded"
    if "\\" in written:
        return "host must not contain a backslash"
    if not written.isascii() and (problem := _disguise_problem(written, host)):
        return problem
    if host.endswith("."):
        return f"host {written!r} must not end with a dot"
    if len(host) > 253:
        return "host is longer than 253 characters"
    labels = host.split(".")
    for label in labels:
        if not label:
            return f"host {written!r} has an empty label (two dots in a row)"
        if len(label) > 63:
            return f"host has a label longer than 63 characters: {label[:20]}…"
        if not _LABEL.match(label):
            return f"host {written!r} may hold only letters, digits, '-', '_' and dots"
    # As in the WHATWG URL standard, a numeric last label makes the host an IPv4 address;
    # only the plain dotted-quad spelling is taken, so there is one way to write each.
    if _NUMERIC.match(labels[-1]):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return f"write an IPv4 address as four decimal numbers (a.b.c.d), not {written!r}"
    return None


def _ipv6_problem(host: str) -> str | None:
    if "%" in host:
        return "IPv6 address must not carry a zone (%…)"
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        return f"[{host}] is not an IP address"
    return None


def _disguise_problem(written: str, host: str) -> str | None:
    """A problem when non-ASCII in ``written`` normalises to plain ASCII in ``host``."""
    before = written.split(".")
    after = host.split(".")
    disguised = len(before) != len(after) or any(
        (label.lower() != out) if label.isascii() else not out.startswith("xn--")
        for label, out in zip(before, after, strict=True)
    )
    if disguised:
        return (
            f"host {written!r} uses non-ASCII characters that stand for {host!r}; "
            "write the host in plain ASCII"
        )
    return None


def check_url(url: str) -> None:
    """Refuse a URL whose host, as the client will connect to it, is malformed, a
    non-public IP literal or a loopback name (other names are checked on connect)."""
    problem = _url_problem(url)
    if problem:
        raise TargetBlocked(problem)


# Judged once per URL: the verdict depends on the URL's text alone, and parsing it twice
# with yarl cost ~50 us of event loop per request, as much as sending it.
@lru_cache(maxsize=4096)
def _url_problem(url: str) -> str | None:
    problem = host_problem(url)
    if problem:
        return problem
    try:
        host = target_host(url)
    except TargetBlocked as exc:
        return str(exc)
    if host == "localhost" or host.endswith(".localhost"):
        return f"{host} is loopback"
    address = literal_address(host)
    if address is not None:
        return blocked_reason(address)
    return None


class PeerRefused(OSError):
    """A socket was about to connect to a non-public address. An :class:`OSError`, so
    aiohttp treats it as that address failing; the client reports it as
    :class:`TargetBlocked`."""


def guarded_socket(addr_info: AddrInfoType) -> socket.socket:
    """The socket for one address aiohttp is about to connect to, once that address is
    checked: the last word on where a connection goes, whatever the host looked like."""
    family, kind, proto, _, sockaddr = addr_info
    address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
    reason = blocked_reason(address)
    if reason:
        raise PeerRefused(errno.EACCES, f"connection refused before connecting: {reason}")
    return socket.socket(family, kind, proto)


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
