"""The SSRF guard end to end: a runtime or a client refusing loopback receivers for real."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from aiohttp.abc import AbstractResolver

from hookruntime import HookRuntime, TargetBlocked, ValidationError
from hookruntime.http import HttpClient
from hookruntime.testing import LoopbackReceiver

pytestmark = pytest.mark.anyio


async def test_a_name_resolving_to_loopback_never_reaches_the_receiver(
    scripted_dns: Callable[..., AbstractResolver],
) -> None:
    async with LoopbackReceiver() as receiver:
        client = HttpClient(resolver=scripted_dns("127.0.0.1", "127.0.0.1"))
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
