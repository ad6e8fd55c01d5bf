"""Blocking calls under load: many calls at once share one directory refresh, keep their
deadline, and never sign with a secret that another process has replaced.

The bounds have room for a loaded 2-core machine: correctness bounds, not timing goals
(those are in ``hookruntime bench blocking``)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy import Engine, event

from hookruntime import HookRuntime, eventloop
from hookruntime.bench.load import load
from hookruntime.bench.stats import ReceiverProcess
from hookruntime.errors import VerificationError
from hookruntime.receiver import verify
from hookruntime.testing import LoopbackReceiver

pytestmark = pytest.mark.anyio
CLAIMS = {"id": "u1", "email": "john@doe.com"}
SECRET = "signature_secret"


@pytest.fixture
def directory_queries() -> Iterator[list[str]]:
    """Every query for a topic's targets, on any engine (SQLite runs them inline on an
    engine of its own)."""
    seen: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "registration_topics" in statement and "priority" in statement:
            seen.append(statement)

    event.listen(Engine, "before_cursor_execute", before)
    yield seen
    event.remove(Engine, "before_cursor_execute", before)


async def test_concurrent_calls_after_the_cache_expires_share_one_directory_query(
    database_url: str, master_key: str, directory_queries: list[str]
) -> None:
    async with (
        LoopbackReceiver() as receiver,
        HookRuntime(database_url, master_key=master_key, allow_private_targets=True) as rt,
    ):
        for _ in range(3):
            await rt.registrations.create(
                org="acme", topics=["user_logged_in"], url=receiver.url, secret=SECRET
            )
        await rt.call("user_logged_in", CLAIMS, org="acme")
        await anyio.sleep(1.1)  # past the directory's 1 s time to live
        directory_queries.clear()
        results = []

        async def call() -> None:
            results.append(await rt.call("user_logged_in", CLAIMS, org="acme", deadline=5))

        async with anyio.create_task_group() as group:
            for _ in range(200):
                group.start_soon(call)
    assert len(directory_queries) == 1
    assert len(results) == 200
    assert all(r.allowed and not r.partial for r in results)


async def test_a_secret_rotated_by_another_process_signs_once_its_cache_expires(
    tmp_path: Path, master_key: str
) -> None:
    url = f"sqlite:///{tmp_path / 'hooks.db'}"
    options: dict[str, Any] = {"master_key": master_key, "allow_private_targets": True}
    async with (
        LoopbackReceiver() as receiver,
        HookRuntime(url, workers=0, **options) as caller,
        HookRuntime(url, workers=0, **options) as other,
    ):
        reg = await other.registrations.create(
            org="acme", topics=["user_logged_in"], url=receiver.url, profile="standard"
        )
        await caller.call("user_logged_in", CLAIMS, org="acme")
        rotated = await other.registrations.rotate_secret(reg.id, org="acme", grace=0)
        await anyio.sleep(1.1)  # the caller's directory is told nothing: it expires
        await caller.call("user_logged_in", CLAIMS, org="acme")
    first, second = receiver.received
    assert reg.secret and rotated.secret
    verify("standard", first.headers, first.body, reg.secret)
    verify("standard", second.headers, second.body, rotated.secret)
    with pytest.raises(VerificationError):
        verify("standard", second.headers, second.body, reg.secret)


async def test_a_rotated_out_secret_stops_signing_when_its_grace_period_ends(
    sqlite_runtime: HookRuntime,
) -> None:
    async with LoopbackReceiver() as receiver:
        reg = await sqlite_runtime.registrations.create(
            org="acme", topics=["user_logged_in"], url=receiver.url, profile="standard"
        )
        rotated = await sqlite_runtime.registrations.rotate_secret(reg.id, org="acme", grace=1.0)
        await sqlite_runtime.call("user_logged_in", CLAIMS, org="acme")
        await anyio.sleep(1.2)
        await sqlite_runtime.call("user_logged_in", CLAIMS, org="acme")
    during, after = receiver.received
    assert reg.secret and rotated.secret
    verify("standard", during.headers, during.body, reg.secret)
    verify("standard", after.headers, after.body, rotated.secret)
    with pytest.raises(VerificationError):
        verify("standard", after.headers, after.body, reg.secret)


def test_200_concurrent_calls_to_three_receivers_end_close_to_their_deadline(
    tmp_path: Path,
) -> None:
    """Each call goes to a receiver that hangs, one that answers in 50 ms and one that
    answers at once, with a 300 ms deadline, beside the default in-process worker."""
    # On a thread of its own, as the bench runs it: an earlier anyio test may have left
    # this thread marked as running asyncio, where a new event loop is refused.
    with ReceiverProcess() as receiver, ThreadPoolExecutor(1) as pool:
        found = pool.submit(
            eventloop.run, partial(load, receiver, tmp_path / "load.db", seconds=2.5, warmup=0)
        ).result()
    # Past the directory cache's expiry twice, the cold first wave counted. Before calls
    # shared its refresh and stopped waiting for cancelled requests to unwind, p99 was
    # 0.7-1.3 s here.
    assert found["overshoot"]["n"] >= 600
    assert found["overshoot"]["p99_ms"] < 500
