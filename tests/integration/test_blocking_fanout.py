"""A blocking call fans out to every receiver at once and returns by its deadline:
bounds with room for a loaded machine, which a sequential fan-out could not meet."""

from __future__ import annotations

import time
from contextlib import AsyncExitStack

import pytest

from hookruntime import HookRuntime
from hookruntime.testing import LoopbackReceiver, Reply

pytestmark = pytest.mark.anyio
CLAIMS = {"id": "u1", "email": "john@doe.com"}
SECRET = "signature_secret"
#: Scheduling slack on a loaded 2-core machine: a correctness bound, not a timing goal.
SLACK = 0.25


async def call_with(runtime: HookRuntime, replies: list[Reply], deadline: float):  # type: ignore[no-untyped-def]
    async with AsyncExitStack() as stack:
        for reply in replies:
            receiver = await stack.enter_async_context(
                LoopbackReceiver(lambda _r, reply=reply: reply)  # type: ignore[misc]
            )
            await runtime.registrations.create(
                org="acme", topics=["user_logged_in"], url=receiver.url, secret=SECRET
            )
        started = time.perf_counter()
        result = await runtime.call("user_logged_in", CLAIMS, org="acme", deadline=deadline)
        return result, time.perf_counter() - started


async def test_a_call_to_receivers_that_all_hang_returns_by_its_deadline(
    sqlite_runtime: HookRuntime,
) -> None:
    result, elapsed = await call_with(sqlite_runtime, [Reply.hang()] * 3, deadline=0.5)
    assert elapsed < 0.5 + SLACK
    assert [o.status for o in result.outcomes] == ["timeout"] * 3
    assert result.allowed and result.partial


async def test_receivers_are_called_concurrently_not_one_after_another(
    sqlite_runtime: HookRuntime,
) -> None:
    replies = [Reply.json({"patch": {name: True}}, delay=0.3) for name in ("a", "b", "c")]
    result, elapsed = await call_with(sqlite_runtime, replies, deadline=1.0)
    # One after another would take 0.9 s; together, a little over 0.3 s.
    assert elapsed < 0.6
    assert [o.status for o in result.outcomes] == ["ok"] * 3
    assert result.patch == {"a": True, "b": True, "c": True}
    assert not result.partial
