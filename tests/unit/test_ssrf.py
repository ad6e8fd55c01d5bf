"""The SSRF guard's rules: only public addresses, in every spelling, checked at each look-up."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

import pytest
from aiohttp.abc import AbstractResolver

from hookruntime import TargetBlocked
from hookruntime.http import GuardedResolver, blocked_reason, check_url

pytestmark = pytest.mark.anyio

BLOCKED = [
    "127.0.0.1",
    "127.255.255.254",
    "10.0.0.1",
    "10.255.255.255",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.0.1",
    "192.168.255.255",
    "169.254.169.254",
    "169.254.0.1",
    "100.64.0.1",
    "100.127.255.254",
    "0.0.0.0",
    "0.1.2.3",
    "224.0.0.1",
    "239.255.255.250",
    "255.255.255.255",
    "192.0.0.1",
    "192.0.2.1",
    "198.18.0.1",
    "198.51.100.7",
    "203.0.113.9",
    "240.0.0.1",
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "fd12:3456::1",
    "ff02::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "64:ff9b::7f00:1",
    "64:ff9b::a00:1",
    "2002:7f00:1::",
    "2002:a9fe:a9fe::1",
    "2001:0:4136:e378:8000:63bf:80ff:fffe",
    "::127.0.0.1",
    "2001:db8::1",
]
SPELLINGS = [
    "2130706433",
    "0x7f.1",
    "017700000001",
    "127.1",
    "0x7f000001",
    "0177.0.0.1",
    "[::ffff:7f00:1]",
    "localhost",
    "LOCALHOST",
    "api.localhost",
]
PUBLIC = [
    "93.184.216.34",
    "8.8.8.8",
    "1.1.1.1",
    "2606:4700:4700::1111",
    "2a00:1450:4001::200e",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "2002:808:808::1",
]


@pytest.mark.parametrize("address", BLOCKED)
def test_non_public_addresses_are_blocked(address: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize("host", [*SPELLINGS, *BLOCKED])
def test_urls_naming_a_blocked_host_in_any_spelling_are_refused(host: str) -> None:
    literal = f"[{host}]" if ":" in host and not host.startswith("[") else host
    with pytest.raises(TargetBlocked):
        check_url(f"http://{literal}:8080/hook")


async def test_dns_rebinding_is_refused_when_the_name_turns_inward(
    scripted_dns: Callable[..., AbstractResolver],
) -> None:
    guard = GuardedResolver(scripted_dns("93.184.216.34", "127.0.0.1"))
    first = await guard.resolve("rebind.example", 80)
    assert first[0]["host"] == "93.184.216.34"  # checked, not connected to here
    with pytest.raises(TargetBlocked, match="rebind.example resolves to 127.0.0.1 is loopback"):
        await guard.resolve("rebind.example", 80)
