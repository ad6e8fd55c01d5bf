"""The httpx-backed client: the aiohttp client's outcomes, its guard, and pytest-httpx
intercepting a runtime configured with it."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Sequence

import pytest
from pytest_httpx import HTTPXMock

from hookruntime import HookRuntime
from hookruntime.errors import (
    ConnectError,
    RequestTimeout,
    ResponseTooLarge,
    TargetBlocked,
)
from hookruntime.http import httpx_client
from hookruntime.http.httpx_client import HttpxClient
from hookruntime.receiver import verify
from hookruntime.testing import LoopbackReceiver, Reply, eventually

pytestmark = pytest.mark.anyio


@pytest.fixture
async def client() -> AsyncIterator[HttpxClient]:
    opened = HttpxClient(allow_private=True)
    await opened.open()
    yield opened
    await opened.aclose()


class Answers:
    """A resolver that answers every name with one address, and remembers the names."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.asked.append(host)
        return [self.address]


async def test_a_2xx_answer_comes_back_with_its_status_headers_and_body(
    client: HttpxClient,
) -> None:
    async with LoopbackReceiver(lambda _r: Reply.json({"decision": "allow"}, status=201)) as rx:
        response = await client.post(
            rx.url, {"Content-Type": "application/json", "X-Test": "1"}, b'{"a":1}', timeout=2
        )
    assert response.status == 201
    assert json.loads(response.body) == {"decision": "allow"}
    assert response.headers["content-type"] == "application/json"
    assert response.elapsed > 0
    [request] = rx.received
    assert request.body == b'{"a":1}' and request.headers["x-test"] == "1"
    assert request.headers["user-agent"].startswith("hookruntime/")


async def test_a_hanging_or_trickling_receiver_times_out_within_the_limit(
    client: HttpxClient,
) -> None:
    for reply in (Reply.hang(), Reply.trickle(interval=0.05)):
        async with LoopbackReceiver(lambda _r, reply=reply: reply) as rx:
            started = time.monotonic()
            with pytest.raises(RequestTimeout):
                await client.post(rx.url, {}, b"{}", timeout=0.3)
            assert time.monotonic() - started < 1.5


async def test_a_body_over_the_cap_is_refused_declared_or_not(client: HttpxClient) -> None:
    for reply in (Reply.huge(size=1024 * 1024), Reply.huge(size=1024 * 1024, declared=False)):
        async with LoopbackReceiver(lambda _r, reply=reply: reply) as rx:
            with pytest.raises(ResponseTooLarge):
                await client.post(rx.url, {}, b"{}", timeout=5, max_body=64 * 1024)


async def test_a_redirect_is_answered_not_followed(client: HttpxClient) -> None:
    async with (
        LoopbackReceiver() as inner,
        LoopbackReceiver(lambda _r: Reply(302, headers={"Location": inner.url})) as outer,
    ):
        response = await client.post(outer.url, {}, b"{}", timeout=2)
    assert response.status == 302 and inner.received == []


async def test_a_closed_port_is_a_connect_error(client: HttpxClient, refused_port: int) -> None:
    with pytest.raises(ConnectError):
        await client.post(f"http://127.0.0.1:{refused_port}/hook", {}, b"{}", timeout=2)


async def test_the_guard_refuses_loopback_literals_and_names_before_sending() -> None:
    resolver = Answers("127.0.0.1")
    async with LoopbackReceiver() as rx:
        client = HttpxClient(resolve=resolver)
        await client.open()
        try:
            with pytest.raises(TargetBlocked, match="127.0.0.1 is loopback"):
                await client.post(rx.url, {}, b"{}", timeout=2)
            with pytest.raises(TargetBlocked, match=r"inward\.example resolves to 127\.0\.0\.1"):
                await client.post(f"http://inward.example:{rx.port}/hook", {}, b"{}", timeout=2)
            with pytest.raises(TargetBlocked, match="four decimal numbers"):
                await client.post(f"http://0x7f.1:{rx.port}/hook", {}, b"{}", timeout=2)
        finally:
            await client.aclose()
    assert resolver.asked == ["inward.example"]
    assert rx.received == []


async def test_a_name_is_connected_to_at_the_address_it_resolved_to() -> None:
    resolver = Answers("127.0.0.1")
    async with LoopbackReceiver() as rx:
        client = HttpxClient(allow_private=True, resolve=resolver)
        await client.open()
        try:
            response = await client.post(
                f"http://inward.example:{rx.port}/hook", {}, b"{}", timeout=2
            )
        finally:
            await client.aclose()
    assert response.status == 200
    assert rx.received[0].headers["host"] == f"inward.example:{rx.port}"
    assert resolver.asked == ["inward.example"]


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
