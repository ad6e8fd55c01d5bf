"""The SSRF guard judges the host the client connects to, not the string it was given.

The URL library normalises a host (IDNA, NFKC) before connecting: fullwidth digits and
ideographic full stops become ``127.0.0.1``. These tests give the runtime such hosts at
registration, and force them into stored rows to prove that sending refuses them too,
with nothing reaching the loopback receiver listening on the port they name.
"""

from __future__ import annotations

import hashlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from sqlalchemy import select, update

import hookruntime.http.client as client_module
from hookruntime import HookRuntime, TargetBlocked, ValidationError
from hookruntime.api import create_app
from hookruntime.http import HttpClient
from hookruntime.store.models import ATTEMPTS, DELIVERIES, REGISTRATIONS
from hookruntime.testing import LoopbackReceiver, Reply, eventually

pytestmark = pytest.mark.anyio

# Written as escapes: fullwidth digits and full stops (U+FF10-FF19, U+FF0E), the ideographic
# full stop (U+3002), circled digits (U+2460...), mathematical bold digits (U+1D7CE...),
# fullwidth letters (U+FF21...) and Arabic-Indic digits (U+0660...).

FULLWIDTH_LOOPBACK = "\uff11\uff12\uff17\uff0e\uff10\uff0e\uff10\uff0e\uff11"
IDEOGRAPHIC_DOTS = "127\u30020\u30020\u30021"
FULLWIDTH_DOTS = "127\uff0e0\uff0e0\uff0e1"
CIRCLED = "\u2460\u2461\u2466.\u24ea.\u24ea.\u2460"
MATH_BOLD = "\U0001d7cf\U0001d7d0\U0001d7d5.\U0001d7ce.\U0001d7ce.\U0001d7cf"
FULLWIDTH_METADATA = "\uff0e".join(["\uff11\uff16\uff19", "\uff12\uff15\uff14"] * 2)
FULLWIDTH_PRIVATE = "\uff11\uff10\uff0e\uff10\uff0e\uff10\uff0e\uff11"
FULLWIDTH_LOCALHOST = "\uff2c\uff2f\uff23\uff21\uff2c\uff28\uff2f\uff33\uff34"

#: Hosts refused at registration, each with a phrase of the reason given.
HOSTILE = {
    FULLWIDTH_LOOPBACK: "non-ASCII",
    IDEOGRAPHIC_DOTS: "non-ASCII",
    FULLWIDTH_DOTS: "non-ASCII",
    CIRCLED: "non-ASCII",
    MATH_BOLD: "non-ASCII",
    FULLWIDTH_METADATA: "non-ASCII",
    FULLWIDTH_PRIVATE: "non-ASCII",
    FULLWIDTH_LOCALHOST: "non-ASCII",
    "\uff45xample.com": "non-ASCII",
    "%31%32%37.0.0.1": "percent-encoded",
    "example.com.": "end with a dot",
    "127.0.0.1.": "end with a dot",
    "exa\\mple.com": "backslash",
    "a" * 64 + ".example": "63",
    ("a" * 60 + ".") * 5 + "example": "253",
    "a..example": "empty label",
    "ex ample.com": "whitespace",
    "ex;ample.com": "only letters, digits",
    "0x7f.1": "four decimal numbers",
    "2130706433": "four decimal numbers",
    "127.1": "four decimal numbers",
    "0177.0.0.1": "four decimal numbers",
    "\u0661\u0662\u0667.0.0.1": "four decimal numbers",
    "[fec0::1]": "site-local",
    "[fe80::1%25eth0]": "zone",
    "[v1.x]": "IP address",
    "[::ffff:127.0.0.1]": "loopback",
    "user:pw@example.com": "credentials",
    "localhost": "loopback",
}
#: Well-formed hosts that must still be accepted.
WELL_FORMED = [
    "example.com",
    "EXAMPLE.com",
    "bücher.example",
    "xn--bcher-kva.example",
    "a-b_c.example",
]
#: Hosts forced into stored rows; the client would reach 127.0.0.1 through each before the fix.
INWARD = [
    FULLWIDTH_LOOPBACK,
    IDEOGRAPHIC_DOTS,
    CIRCLED,
    MATH_BOLD,
    FULLWIDTH_LOCALHOST,
    "0x7f.1",
    "2130706433",
    "127.0.0.1.",
    "%31%32%37.0.0.1",
    "[::ffff:127.0.0.1]",
    "localhost",
]
INTERNAL_ANSWER = b'{"secret": "internal metadata"}'


@pytest.fixture(scope="module")
async def guarded(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[HookRuntime]:
    from hookruntime.store.crypto import generate_master_key

    url = f"sqlite:///{tmp_path_factory.mktemp('ssrf') / 'h.db'}"
    async with HookRuntime(url, workers=0, master_key=generate_master_key()) as runtime:
        yield runtime


def _url(host: str, port: int = 8080) -> str:
    if "@" in host:
        return f"http://{host}/hook"
    return f"http://{host}:{port}/hook"


@pytest.mark.parametrize("host", list(HOSTILE))
async def test_registration_refuses_a_host_that_is_not_a_plain_public_one(
    guarded: HookRuntime, host: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        await guarded.registrations.create(org="acme", topics=["punch.create"], url=_url(host))
    [error] = caught.value.errors
    assert error.field == "url" and HOSTILE[host] in error.message
    assert "\n" not in error.message


@pytest.mark.parametrize("host", list(HOSTILE))
async def test_the_api_answers_422_to_a_host_that_is_not_a_plain_public_one(
    guarded: HookRuntime, host: str
) -> None:
    org = f"api-{hashlib.sha256(host.encode()).hexdigest()[:12]}"
    key = await guarded.keys.create(org=org, scopes=["webhooks:manage"])
    transport = httpx.ASGITransport(app=create_app(guarded, manage_lifecycle=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://hookruntime.test") as api:
        response = await api.post(
            "/v1/registrations",
            json={"topics": ["punch.create"], "url": _url(host)},
            headers={"Authorization": f"Bearer {key.key}"},
        )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert (await guarded.registrations.list(org=org)) == []


@pytest.mark.parametrize("host", WELL_FORMED)
async def test_well_formed_public_hosts_are_accepted(guarded: HookRuntime, host: str) -> None:
    registration = await guarded.registrations.create(
        org="plain", topics=["punch.create"], url=_url(host)
    )
    assert registration.url == _url(host)


async def test_disguised_hosts_are_refused_even_when_private_targets_are_allowed(
    tmp_path: Path, master_key: str
) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    async with HookRuntime(
        url, workers=0, master_key=master_key, allow_private_targets=True
    ) as runtime:
        for host in (FULLWIDTH_LOOPBACK, IDEOGRAPHIC_DOTS, "%31%32%37.0.0.1", "0x7f.1"):
            with pytest.raises(ValidationError):
                await runtime.registrations.create(
                    org="acme", topics=["punch.create"], url=_url(host)
                )
        await runtime.registrations.create(
            org="acme", topics=["punch.create"], url="http://127.0.0.1:8080/hook"
        )


# -- send time: rows written before the fix, or by a path that skipped validation -----


async def _force_rows(url: str, master_key: str, topic: str, port: int) -> dict[str, str]:
    """One registration per inward host, its URL written straight into the table."""
    hosts: dict[str, str] = {}
    async with HookRuntime(url, workers=0, master_key=master_key) as runtime:
        for host in INWARD:
            registration = await runtime.registrations.create(
                org="acme", topics=[topic], url="https://placeholder.example/hook", max_attempts=1
            )
            hosts[registration.id] = host
        async with runtime.database.engine.begin() as conn:
            for rid, host in hosts.items():
                await conn.execute(
                    update(REGISTRATIONS)
                    .where(REGISTRATIONS.c.id == rid)
                    .values(url=_url(host, port))
                )
    return hosts


async def _attempts(runtime: HookRuntime) -> list[dict[str, Any]]:
    async with runtime.database.engine.connect() as conn:
        rows = (await conn.execute(select(ATTEMPTS))).mappings().all()
    return [dict(row) for row in rows]


@pytest.mark.parametrize("path", ["queued", "queued-sender-process", "api-test", "blocking"])
async def test_a_stored_row_naming_an_inward_host_is_refused_at_send_time(
    tmp_path: Path, master_key: str, path: str
) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    blocking = path == "blocking"
    topic = "user_logged_in" if blocking else "punch.create"
    async with LoopbackReceiver(lambda _r: Reply(200, body=INTERNAL_ANSWER)) as receiver:
        hosts = await _force_rows(url, master_key, topic, receiver.port)
        async with HookRuntime(
            url,
            workers=0 if blocking else 1,
            master_key=master_key,
            allow_private_targets=False,
            sender_process=path == "queued-sender-process",
        ) as runtime:
            if blocking:
                result = await runtime.call(topic, {"id": "u1"}, org="acme")
                for outcome in result.outcomes:
                    host = hosts[outcome.registration_id]
                    assert outcome.status == "error", (host, outcome)
                    assert "receiver address refused" in (outcome.detail or ""), (host, outcome)
            else:
                if path == "api-test":
                    key = await runtime.keys.create(org="acme", scopes=["webhooks:manage"])
                    app = create_app(runtime, manage_lifecycle=False)
                    async with httpx.AsyncClient(
                        transport=httpx.ASGITransport(app=app), base_url="http://h.test"
                    ) as api:
                        answer = await api.post(
                            "/v1/test",
                            json={"topic": topic},
                            headers={"Authorization": f"Bearer {key.key}"},
                        )
                    assert answer.status_code == 202 and answer.json()["deliveries"] == len(hosts)
                else:
                    await runtime.emit(topic, {"punch": {"id": 1}}, org="acme")
                await eventually(lambda: _all_settled(runtime, len(hosts)))
                for delivery in await runtime.deliveries.list(org="acme"):
                    view = await runtime.deliveries.get(delivery.id, org="acme")
                    host = hosts[view.registration_id]
                    [attempt] = view.attempt_log
                    assert attempt.status_code is None and attempt.response is None, host
                    assert "TargetBlocked" in (attempt.error or ""), (host, attempt.error)
            await eventually(lambda: _logged(runtime, len(hosts)))
            for attempt in await _attempts(runtime):
                assert attempt["response"] is None and attempt["status_code"] is None
    assert receiver.received == []


async def _all_settled(runtime: HookRuntime, count: int) -> bool:
    async with runtime.database.engine.connect() as conn:
        statuses = (await conn.execute(select(DELIVERIES.c.status))).scalars().all()
    return len(statuses) == count and all(s in ("dead", "delivered") for s in statuses)


async def _logged(runtime: HookRuntime, count: int) -> bool:
    return len(await _attempts(runtime)) >= count


# -- the client's own checks: the guarded resolver and the peer address -------------------


class Answers(AbstractResolver):
    """A name resolver answering every look-up with ``address``."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        return [
            ResolveResult(
                hostname=host, host=self.address, port=port, family=family, proto=0, flags=0
            )
        ]

    async def close(self) -> None:
        pass


async def test_the_client_refuses_a_name_its_resolver_answers_with_loopback() -> None:
    async with LoopbackReceiver() as receiver:
        client = HttpClient(resolver=Answers("127.0.0.1"))
        await client.open()
        try:
            with pytest.raises(TargetBlocked, match=r"inward\.example resolves to 127\.0\.0\.1"):
                await client.post(
                    f"http://inward.example:{receiver.port}/hook", {}, b"{}", timeout=2
                )
        finally:
            await client.aclose()
    assert receiver.received == []


async def test_the_peer_address_is_checked_even_if_the_resolver_lets_a_name_through(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Stands for any way a name could get past the resolver check: the connection itself
    # must still refuse to go to a loopback address.
    monkeypatch.setattr(client_module, "GuardedResolver", lambda base: base)
    resolver = Answers("127.0.0.1")
    async with LoopbackReceiver() as receiver:
        client = HttpClient(resolver=resolver)
        await client.open()
        try:
            with pytest.raises(TargetBlocked, match=r"127\.0\.0\.1 is loopback"):
                await client.post(
                    f"http://inward.example:{receiver.port}/hook", {}, b"{}", timeout=2
                )
        finally:
            await client.aclose()
    assert resolver.asked == ["inward.example"]
    assert receiver.received == []


async def test_the_client_judges_the_host_after_normalisation() -> None:
    async with LoopbackReceiver() as receiver:
        client = HttpClient()
        await client.open()
        try:
            for host in (FULLWIDTH_LOOPBACK, IDEOGRAPHIC_DOTS, MATH_BOLD):
                with pytest.raises(TargetBlocked, match="non-ASCII characters that stand for"):
                    await client.post(_url(host, receiver.port), {}, b"{}", timeout=2)
        finally:
            await client.aclose()
    assert receiver.received == []


async def test_private_targets_allowed_still_reach_a_loopback_receiver() -> None:
    async with LoopbackReceiver() as receiver:
        client = HttpClient(allow_private=True, resolver=Answers("127.0.0.1"))
        await client.open()
        try:
            response = await client.post(
                f"http://inward.example:{receiver.port}/hook", {}, b"{}", timeout=2
            )
        finally:
            await client.aclose()
    assert response.status == 200 and len(receiver.received) == 1
