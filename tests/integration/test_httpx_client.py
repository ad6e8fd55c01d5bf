"""The httpx-backed client's own: pytest-httpx intercepting a runtime configured with it,
and its check of the connected peer. The outcomes every backend shares (statuses,
timeouts, the body cap, redirects, refusals, the guard) are asserted for it in
``test_http_backends``."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from pytest_httpx import HTTPXMock

from hookruntime import HookRuntime
from hookruntime.errors import (
    TargetBlocked,
)
from hookruntime.http import httpx_client
from hookruntime.http.httpx_client import HttpxClient
from hookruntime.receiver import verify
from hookruntime.testing import LoopbackReceiver, eventually

pytestmark = pytest.mark.anyio


class Answers:
    """A resolver that answers every name with one address, and remembers the names."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.asked.append(host)
        return [self.address]


async def test_httpx_mock_intercepts_a_runtimes_queued_delivery_and_blocking_call(
    tmp_path, master_key, httpx_mock: HTTPXMock
) -> None:
    hook = "https://crm.example/hooks"
    httpx_mock.add_response(url=hook, status_code=204)
    httpx_mock.add_response(url=hook, json={"decision": "deny", "reason": "blocked user"})
    environ = {"HOOKRUNTIME_HTTP_CLIENT": "httpx"}
    async with HookRuntime(
        f"sqlite:///{tmp_path / 'h.db'}", master_key=master_key, environ=environ
    ) as runtime:
        queued = await runtime.registrations.create(
            org="acme", topics=["profile_updated"], url=hook, retry_schedule=[0.01]
        )
        await runtime.emit("profile_updated", {"id": "u1"}, org="acme")

        async def delivered() -> bool:
            return bool(await runtime.deliveries.list(org="acme", status="delivered"))

        await eventually(delivered, timeout=5)
        await runtime.registrations.delete(queued.id, org="acme")
        await runtime.registrations.create(org="acme", topics=["user_logged_in"], url=hook)
        result = await runtime.call("user_logged_in", {"id": "u1"}, org="acme")
    assert not result.allowed and result.reason == "blocked user"
    sent, called = httpx_mock.get_requests()
    assert queued.secret is not None
    assert verify("jws", sent.headers, sent.content, queued.secret).payload["id"] == "u1"
    assert called.headers["content-type"] == "application/jose"


async def test_a_guarded_connection_checks_the_address_before_and_the_peer_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Loopback stands in for a public address here: the guard is told it is one.
    judged: list[str] = []

    def public(address: object) -> None:
        judged.append(str(address))

    monkeypatch.setattr(httpx_client, "blocked_reason", public)
    async with LoopbackReceiver() as rx:
        client = HttpxClient(resolve=Answers("127.0.0.1"))
        await client.open()
        try:
            response = await client.post(
                f"http://public.example:{rx.port}/hook", {}, b"{}", timeout=2
            )
        finally:
            await client.aclose()
    assert response.status == 200
    assert judged == ["127.0.0.1", "127.0.0.1"]  # the resolved address, then the peer


async def test_the_peer_is_refused_when_a_check_before_connecting_let_it_through(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Stands for any way an address could pass the first check: the connected peer is
    # checked again, and nothing is sent to it.
    real = httpx_client.blocked_reason
    judged: list[object] = []

    def lenient_once(address: object) -> str | None:
        judged.append(address)
        return None if len(judged) == 1 else real(address)  # type: ignore[arg-type]

    monkeypatch.setattr(httpx_client, "blocked_reason", lenient_once)
    async with LoopbackReceiver() as rx:
        client = HttpxClient(resolve=Answers("127.0.0.1"))
        await client.open()
        try:
            with pytest.raises(TargetBlocked, match="after connecting: 127.0.0.1 is loopback"):
                await client.post(f"http://public.example:{rx.port}/hook", {}, b"{}", timeout=2)
        finally:
            await client.aclose()
    assert rx.received == []
