"""Signed answers end to end: a real receiver signs with the helper, a runtime on a SQLite file
calls it, and a replayed or stale answer is ``invalid``."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hookruntime import HookRuntime
from hookruntime.receiver import verify
from hookruntime.testing import LoopbackReceiver, Received, Reply

pytestmark = pytest.mark.anyio
SECRET = "signature_secret"
CLAIMS = {"id": "u1", "email": "john@doe.com"}
ELEVATED = {"decision": "allow", "patch": {"role": "admin"}}


def request_id(request: Received) -> str | None:
    return verify("jws", request.headers, request.body, SECRET).event_id


@pytest.fixture
async def runtime(tmp_path: Path, master_key: str) -> AsyncIterator[HookRuntime]:
    async with HookRuntime(
        f"sqlite:///{tmp_path / 'hooks.db'}",
        workers=0,
        master_key=master_key,
        allow_private_targets=True,
    ) as opened:
        yield opened


async def test_a_receiver_signing_with_the_helper_is_answered_ok(runtime: HookRuntime) -> None:
    def answer(request: Received) -> Reply:
        return Reply.signed(ELEVATED, SECRET, request_id(request))

    async with LoopbackReceiver(answer) as receiver:
        await runtime.registrations.create(
            org="acme",
            topics=["user_logged_in"],
            url=receiver.url,
            secret=SECRET,
            signed_responses=True,
        )
        result = await runtime.call("user_logged_in", CLAIMS, org="acme")
    assert [o.status for o in result.outcomes] == ["ok"]
    assert result.patch == {"role": "admin"}


async def test_a_signed_answer_replayed_from_an_earlier_call_is_invalid(
    runtime: HookRuntime,
) -> None:
    recorded: list[Reply] = []

    def replaying(request: Received) -> Reply:
        # The first call's answer, validly signed, sent again to every later call.
        if not recorded:
            recorded.append(Reply.signed(ELEVATED, SECRET, request_id(request)))
        return recorded[0]

    async with LoopbackReceiver(replaying) as receiver:
        await runtime.registrations.create(
            org="acme",
            topics=["user_logged_in"],
            url=receiver.url,
            secret=SECRET,
            signed_responses=True,
        )
        first = await runtime.call("user_logged_in", CLAIMS, org="acme")
        second = await runtime.call("user_logged_in", CLAIMS, org="acme")
    assert first.outcomes[0].status == "ok"
    assert second.outcomes[0].status == "invalid"
    assert "not this call's" in (second.outcomes[0].detail or "")
    assert second.patch == {}


async def test_a_stale_signed_answer_is_invalid_end_to_end(runtime: HookRuntime) -> None:
    def stale(request: Received) -> Reply:
        return Reply.signed(ELEVATED, SECRET, request_id(request), now=time.time() - 600)

    async with LoopbackReceiver(stale) as receiver:
        await runtime.registrations.create(
            org="acme",
            topics=["user_logged_in"],
            url=receiver.url,
            secret=SECRET,
            signed_responses=True,
        )
        result = await runtime.call("user_logged_in", CLAIMS, org="acme")
    assert result.outcomes[0].status == "invalid"
    assert "iat" in (result.outcomes[0].detail or "")
