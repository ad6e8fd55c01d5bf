"""What a fan-out leaves behind: every receiver's row in the attempt log on both
databases, the decision on one of them, and one body per receiver signed from the
call's payload serialised once."""

from __future__ import annotations

import base64
import json

import anyio
import pytest
from sqlalchemy import text

from hookruntime import HookRuntime
from hookruntime.receiver import verify
from hookruntime.store.models import ATTEMPTS
from hookruntime.testing import LoopbackReceiver, Reply

pytestmark = pytest.mark.anyio
SECRET = "signature_secret"


async def test_a_fan_out_logs_every_receiver_and_its_decision_on_one_row(
    database_url: str, master_key: str
) -> None:
    async with (
        LoopbackReceiver(lambda _r: Reply.json({"patch": {"tier": "gold"}})) as ok,
        LoopbackReceiver(lambda _r: Reply.hang()) as hangs,
        HookRuntime(
            database_url, workers=0, master_key=master_key, allow_private_targets=True
        ) as runtime,
    ):
        for receiver in (ok, hangs):
            await runtime.registrations.create(
                org="acme", topics=["user_logged_in"], url=receiver.url, secret=SECRET
            )
        result = await runtime.call("user_logged_in", {"id": "u1"}, org="acme", deadline=0.2)
        await runtime.attempts.flush()
        async with runtime.database.engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        f"SELECT registration_id, outcome, status_code, call_id, call_detail, "
                        f"number, latency_ms, error, created_at FROM {ATTEMPTS.fullname}"
                    )
                )
            ).all()
    assert result.allowed and result.partial and result.patch == {"tier": "gold"}
    by_outcome = {row.outcome: row for row in rows}
    assert sorted(by_outcome) == ["ok", "timeout"]
    assert {row.call_id for row in rows} == {result.call_id}
    assert by_outcome["ok"].status_code == 200 and by_outcome["ok"].number == 1
    assert by_outcome["ok"].latency_ms > 0 and by_outcome["timeout"].error
    assert all(row.created_at > 0 for row in rows)
    details = [json.loads(row.call_detail) for row in rows if row.call_detail]
    assert len(details) == 1
    assert details[0]["deadline_ms"] == 200 and details[0]["allowed"] is True
    assert details[0]["partial"] is True


@pytest.mark.parametrize("profile", ["jws", "standard", "servicehook", "envelope"])
async def test_each_receiver_gets_the_call_data_signed_with_its_own_secret(
    sqlite_runtime: HookRuntime, profile: str
) -> None:
    secrets = []
    async with LoopbackReceiver() as one, LoopbackReceiver() as two:
        for receiver in (one, two):
            reg = await sqlite_runtime.registrations.create(
                org="acme", topics=["user_logged_in"], url=receiver.url, profile=profile
            )
            assert reg.secret
            secrets.append(reg.secret)
        data = {"id": "u1", "email": "ü@example.com", "tags": ["a", "b"]}
        result = await sqlite_runtime.call("user_logged_in", data, org="acme")
    assert [o.status for o in result.outcomes] == ["ok", "ok"]
    for receiver, secret in zip((one, two), secrets, strict=True):
        (received,) = receiver.received
        verified = verify(profile, received.headers, received.body, secret)
        payload = verified.payload
        inner = payload.get("data", payload) if profile in ("standard", "envelope") else payload
        assert {k: inner[k] for k in data} == data


async def test_data_holding_the_request_id_member_is_sent_with_it_once(
    sqlite_runtime: HookRuntime,
) -> None:
    async with LoopbackReceiver() as one, LoopbackReceiver() as two:
        for receiver in (one, two):
            await sqlite_runtime.registrations.create(
                org="acme", topics=["user_logged_in"], url=receiver.url, secret=SECRET
            )
        data = {"id": "u1", "webhook_request_id": "from the caller"}
        result = await sqlite_runtime.call("user_logged_in", data, org="acme")
    seen = [*one.received, *two.received]
    assert len(seen) == 2
    for received in seen:
        claims = verify("jws", received.headers, received.body, SECRET)
        assert claims.event_id == result.call_id
        # One member of that name in the signed JSON, not the caller's beside the call's.
        part = received.body.split(b".")[1]
        signed = base64.urlsafe_b64decode(part + b"=" * (-len(part) % 4))
        assert signed.count(b'"webhook_request_id"') == 1


async def test_a_fan_out_returns_at_its_deadline_while_its_losers_unwind_after(
    sqlite_runtime: HookRuntime,
) -> None:
    async with (
        LoopbackReceiver(lambda _r: Reply.hang()) as first,
        LoopbackReceiver(lambda _r: Reply.hang()) as second,
    ):
        for receiver in (first, second):
            await sqlite_runtime.registrations.create(
                org="acme", topics=["user_logged_in"], url=receiver.url, secret=SECRET
            )
        started = anyio.current_time()
        result = await sqlite_runtime.call("user_logged_in", {"id": "u1"}, org="acme", deadline=0.1)
        elapsed = anyio.current_time() - started
        await anyio.sleep(0.05)
    assert [o.status for o in result.outcomes] == ["timeout", "timeout"]
    assert 0.1 <= elapsed < 0.2
