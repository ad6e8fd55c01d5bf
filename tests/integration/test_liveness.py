"""Results that cannot poison or overwrite each other, heartbeats that let a dead
worker's work be taken back in seconds, and prompt wake-ups (retries, LISTEN/NOTIFY);
on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from itertools import pairwise
from typing import Any

import anyio
import pytest
from sqlalchemy import func, insert, select

from hookruntime import HookRuntime
from hookruntime.http import HttpClient
from hookruntime.profiles import RetryPolicy
from hookruntime.queue.claim import claim
from hookruntime.queue.lanes import SendResult
from hookruntime.queue.recorder import record_of
from hookruntime.queue.records import DisablePolicy, write_records
from hookruntime.queue.wake import Wakeup
from hookruntime.queue.worker import Worker, WorkerSettings
from hookruntime.store.models import ATTEMPTS, DELIVERIES, WORKERS
from hookruntime.targets import Directory
from hookruntime.testing import LoopbackReceiver, Received, Reply, eventually

pytestmark = pytest.mark.anyio
PUNCH = {"punch": {"id": 2, "punch_type": "IN"}}


def sends(received: list[Received]) -> Counter[str]:
    return Counter(r.headers["x-servicehook-id"] for r in received)


async def rows(runtime: HookRuntime, query: Any) -> list[Any]:
    async with runtime.database.engine.connect() as conn:
        return list((await conn.execute(query)).all())


async def delivered(runtime: HookRuntime, registration_id: str) -> int:
    found = await rows(
        runtime,
        select(func.count()).where(
            DELIVERIES.c.registration_id == registration_id, DELIVERIES.c.status == "delivered"
        ),
    )
    return int(found[0][0])


# -- one result cannot poison the others -----------------------------------------------


async def test_deleting_a_registration_mid_flight_sends_no_other_delivery_twice(
    open_runtime,
) -> None:
    slow = lambda _r: Reply(delay=0.4)  # noqa: E731
    async with (
        LoopbackReceiver(slow) as doomed_rx,
        LoopbackReceiver(slow) as kept_rx,
        open_runtime(lease="2") as runtime,
    ):
        doomed = await runtime.registrations.create(
            org="acme", topics=["punch.create"], url=doomed_rx.url
        )
        kept = await runtime.registrations.create(
            org="acme", topics=["punch.create"], url=kept_rx.url
        )
        ids = await runtime.emit_many("punch.create", [PUNCH] * 30, org="acme")
        await eventually(lambda: len(doomed_rx.received) == 30 and len(kept_rx.received) == 30)
        # Both registrations' results come back together, the deleted one's first among
        # them, and share a write.
        await runtime.registrations.delete(doomed.id, org="acme")
        await eventually(lambda: delivered(runtime, kept.id), timeout=10)
        await eventually(lambda: _equals(delivered(runtime, kept.id), 30), timeout=10)
        # Past the 2 s lease: a result that was dropped would have been sent again.
        await anyio.sleep(2.5)
        assert await delivered(runtime, kept.id) == 30
    assert sends(kept_rx.received) == Counter(dict.fromkeys(ids, 1))


async def _equals(value: Any, expected: object) -> bool:
    return bool(await value == expected)


# -- a result from a lost lease never overwrites the current owner's ---------------------

POLICY = RetryPolicy((5.0,), 10.0)


def _outcome(status: int) -> SendResult:
    return SendResult(
        status=status, error=None, retry_after=None, response="", latency=0.01, at=time.time()
    )


@pytest.mark.parametrize("late_first", [False, True], ids=["after", "before"])
async def test_a_result_from_a_lost_lease_does_not_change_the_delivery(
    open_runtime, late_first: bool
) -> None:
    async with open_runtime(workers=0) as runtime:
        await runtime.registrations.create(
            org="acme", topics=["punch.create"], url="http://127.0.0.1:9/"
        )
        await runtime.emit("punch.create", PUNCH, org="acme")
        now = time.time()
        [lost] = await claim(runtime.database, "stalled", 10, now, lease=1)
        # Its lease runs out; another worker claims the delivery and delivers it.
        [owner] = await claim(runtime.database, "owner", 10, now + 2, lease=60)
        late = record_of(lost, POLICY, None, _outcome(503))
        current = record_of(owner, POLICY, None, _outcome(200))

        async def write(record: Any) -> None:
            await write_records(runtime.database, [record], DisablePolicy())

        if late_first:
            await write(late)
            # Not turned into a retry that another worker could claim and send again.
            [(status, next_at)] = await rows(
                runtime, select(DELIVERIES.c.status, DELIVERIES.c.next_at)
            )
            assert (status, next_at) == ("delivering", owner.lease_until)
            await write(current)
        else:
            await write(current)
            await write(late)
        [(status, attempts, last_status)] = await rows(
            runtime,
            select(DELIVERIES.c.status, DELIVERIES.c.attempts, DELIVERIES.c.last_status),
        )
        assert (status, attempts, last_status) == ("delivered", 1, 200)
        # The late attempt did happen: it is in the log.
        logged = await rows(runtime, select(ATTEMPTS.c.status_code).order_by(ATTEMPTS.c.id))
        assert sorted(code for (code,) in logged) == [200, 503]


# -- a dead worker's deliveries are taken back in seconds ---------------------------------


async def test_a_dead_workers_deliveries_are_taken_back_without_waiting_for_the_lease(
    open_runtime,
) -> None:
    async with LoopbackReceiver() as receiver:
        async with open_runtime(workers=0) as runtime:
            await runtime.registrations.create(
                org="acme", topics=["punch.create"], url=receiver.url
            )
            ids = await runtime.emit_many("punch.create", [PUNCH] * 2, org="acme")
            now = time.time()
            # One claimed by a worker whose heartbeat stopped 4 s ago, one by a worker
            # that left no heartbeat at all; both under a 60 s lease.
            assert len(await claim(runtime.database, "silent", 1, now, lease=60)) == 1
            assert len(await claim(runtime.database, "unknown", 1, now, lease=60)) == 1
            async with runtime.database.begin() as conn:
                await conn.execute(
                    insert(WORKERS).values(
                        id="silent", host="h", pid=1, started_at=now - 60, heartbeat_at=now - 4
                    )
                )
        async with open_runtime() as runtime:
            started = time.monotonic()
            await eventually(lambda: len(receiver.received) == 2, timeout=5)
            assert time.monotonic() - started < 4
            assert sorted(sends(receiver.received)) == sorted(ids)
            # The live worker's own heartbeat is there, the dead one's is gone.
            alive = await rows(runtime, select(WORKERS.c.id, WORKERS.c.pid))
            assert [worker_id for worker_id, _ in alive] == [runtime.workers[0].id]
        async with open_runtime(workers=0) as runtime:
            # A clean stop takes its row with it.
            assert await rows(runtime, select(WORKERS.c.id)) == []


# -- wake-ups -------------------------------------------------------------------------------


async def test_every_retry_starts_promptly_when_due_and_never_early(open_runtime) -> None:
    # Thirty deliveries failing at once: their retries fall due at different times, and
    # each must wake the worker then, not at its next poll.
    async with (
        LoopbackReceiver(lambda _r: Reply(500)) as receiver,
        open_runtime() as runtime,
    ):
        await runtime.registrations.create(
            org="acme", topics=["punch.create"], url=receiver.url, retry_schedule=[0.05] * 2
        )
        await runtime.emit_many("punch.create", [PUNCH] * 30, org="acme")
        await eventually(lambda: len(receiver.received) == 90, timeout=20)
    arrivals: defaultdict[str, list[float]] = defaultdict(list)
    for request in receiver.received:
        arrivals[request.headers["x-servicehook-id"]].append(request.at)
    gaps = [b - a for times in arrivals.values() for a, b in pairwise(times)]
    assert len(gaps) == 60
    # Due 0.05-0.06 s after the previous answer came back (after it arrived here).
    assert min(gaps) >= 0.05, "a retry started early"
    assert max(gaps) <= 0.06 + 0.3, f"a retry started late: {sorted(gaps)[-5:]}"


async def test_an_idle_worker_is_woken_through_notify_by_another_runtimes_emit(
    pg_url: str, master_key: str
) -> None:
    # The emitting runtime shares nothing with the worker but the database: only
    # PostgreSQL's NOTIFY can wake it before its 30 s poll.
    async with (
        LoopbackReceiver() as receiver,
        HookRuntime(
            pg_url, workers=0, master_key=master_key, allow_private_targets=True
        ) as emitter,
    ):
        await emitter.registrations.create(org="acme", topics=["punch.create"], url=receiver.url)
        client = HttpClient(allow_private=True)
        await client.open()
        worker = Worker(
            emitter.database,
            Directory(emitter.database, emitter.registrations),
            client,
            Wakeup(),
            WorkerSettings(poll=30),
        )
        try:
            async with anyio.create_task_group() as group:
                await group.start(worker.run)
                await anyio.sleep(1.0)  # listening, and idle: asleep for the poll
                started = time.time()
                await emitter.emit("punch.create", PUNCH, org="acme")
                await eventually(lambda: receiver.received, timeout=2)
                assert receiver.received[0].at - started < 0.3
                worker.stop()
        finally:
            await client.aclose()


# -- a clean close ----------------------------------------------------------------------------


async def test_closing_right_after_calls_and_deliveries_keeps_every_row_and_is_quick(
    open_runtime,
) -> None:
    claims = {"id": "u1", "email": "john@doe.com", "firstName": "John"}
    async with LoopbackReceiver() as receiver:
        async with open_runtime() as runtime:
            for topic in ("user_logged_in", "punch.create"):
                await runtime.registrations.create(org="acme", topics=[topic], url=receiver.url)
            await runtime.emit_many("punch.create", [PUNCH] * 5, org="acme")
            await eventually(lambda: len(receiver.received) == 5)
            for _ in range(5):
                assert (await runtime.call("user_logged_in", claims, org="acme")).allowed
            closing = time.monotonic()
        closed_in = time.monotonic() - closing
        async with open_runtime(workers=0) as runtime:
            calls = await rows(
                runtime, select(ATTEMPTS.c.id).where(ATTEMPTS.c.call_id.is_not(None))
            )
            sent = await rows(
                runtime, select(ATTEMPTS.c.id).where(ATTEMPTS.c.delivery_id.is_not(None))
            )
            done = await rows(
                runtime, select(DELIVERIES.c.id).where(DELIVERIES.c.status == "delivered")
            )
    assert (len(calls), len(sent), len(done)) == (5, 5, 5)
    assert closed_in < 0.5
