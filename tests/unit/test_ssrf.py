"""The SSRF guard: only public receivers, checked at connect time, every spelling."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from hookruntime import HookRuntime, TargetBlocked, ValidationError
from hookruntime.http import GuardedResolver, HttpClient, blocked_reason, check_url
from hookruntime.testing import LoopbackReceiver

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


class Answers(AbstractResolver):
    """A resolver that answers from a script, one answer per look-up."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        address = self.answers.pop(0)
        return [
            ResolveResult(hostname=host, host=address, port=port, family=family, proto=0, flags=0)
        ]

    async def close(self) -> None:
        pass


async def test_dns_rebinding_is_refused_when_the_name_turns_inward() -> None:
    guard = GuardedResolver(Answers("93.184.216.34", "127.0.0.1"))
    first = await guard.resolve("rebind.example", 80)
    assert first[0]["host"] == "93.184.216.34"  # checked, not connected to here
    with pytest.raises(TargetBlocked, match="rebind.example resolves to 127.0.0.1 is loopback"):
        await guard.resolve("rebind.example", 80)


async def test_a_name_resolving_to_loopback_never_reaches_the_receiver() -> None:
    async with LoopbackReceiver() as receiver:
        client = HttpClient(resolver=Answers("127.0.0.1", "127.0.0.1"))
        await client.open()
        try:
            with pytest.raises(TargetBlocked):
                await client.post(
                    f"http://rebind.example:{receiver.port}/hook", {}, b"{}", timeout=2
                )
            with pytest.raises(TargetBlocked):
                await client.post(receiver.url, {}, b"{}", timeout=2)
        finally:
            await client.aclose()
        assert receiver.received == []


async def test_registration_refuses_private_urls_unless_allowed(tmp_path, master_key) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    async with HookRuntime(url, workers=0, master_key=master_key) as runtime:
        with pytest.raises(ValidationError, match="169.254.169.254 is link-local"):
            await runtime.registrations.create(
                org="acme", topics=["punch.create"], url="http://169.254.169.254/latest/meta-data"
            )
        with pytest.raises(ValidationError, match="ALLOW_PRIVATE_TARGETS"):
            await runtime.registrations.create(
                org="acme", topics=["punch.create"], url="http://10.0.0.1:8080/"
            )
        with pytest.raises(ValidationError, match="four decimal numbers"):
            await runtime.registrations.create(
                org="acme", topics=["punch.create"], url="http://0x7f.1:8080/"
            )
    async with HookRuntime(
        url, workers=0, master_key=master_key, allow_private_targets=True
    ) as runtime:
        await runtime.registrations.create(
            org="acme", topics=["punch.create"], url="http://127.0.0.1:8080/"
        )


async def test_a_blocked_blocking_receiver_is_an_error_outcome(tmp_path, master_key) -> None:
    async with LoopbackReceiver() as receiver:
        url = f"sqlite:///{tmp_path / 'h.db'}"
        async with HookRuntime(
            url, workers=0, master_key=master_key, allow_private_targets=True
        ) as runtime:
            await runtime.registrations.create(
                org="acme", topics=["user_logged_in"], url=receiver.url, secret="signature_secret"
            )
        async with HookRuntime(url, workers=0, master_key=master_key) as runtime:
            result = await runtime.call("user_logged_in", {"id": "u1"}, org="acme")
        assert result.outcomes[0].status == "error"
        assert "receiver address refused" in (result.outcomes[0].detail or "")
        assert receiver.received == []


async def test_a_redirect_to_loopback_is_not_followed(tmp_path, master_key) -> None:
    from hookruntime.testing import Reply

    async with (
        LoopbackReceiver() as inner,
        LoopbackReceiver(lambda _r: Reply(302, headers={"Location": inner.url})) as outer,
    ):
        client = HttpClient(allow_private=True)
        await client.open()
        try:
            response = await client.post(outer.url, {}, b"{}", timeout=2)
        finally:
            await client.aclose()
    assert response.status == 302 and inner.received == []
