"""The delivery worker (queue/worker.py): an idle worker sends at once; what each answer
comes to (a schedule run out, any non-2xx, a timeout, a redirect, Retry-After); work held
past its lease; closing. Real loopback receivers, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest

import hookruntime.queue.worker as worker_module
from hookruntime.http import HttpClient
from hookruntime.queue.claim import Claimed, claim
from hookruntime.queue.wake import Wakeup
from hookruntime.queue.worker import Worker, WorkerSettings
from hookruntime.store.models import DELIVERIES
from hookruntime.targets import Directory
from hookruntime.testing import LoopbackReceiver, Reply, eventually

pytestmark = pytest.mark.anyio
PUNCH = {"punch": {"id": 2, "punch_type": "IN"}}
FAST = [0.05] * 4
#: For tests of what the lanes do: run them in the worker's process and in a sender process.
SENDING = pytest.mark.parametrize("sending", ["0", "1"], ids=["one-process", "sender-process"])


@SENDING
async def test_an_idle_worker_delivers_a_new_event_at_once(
    open_runtime, count, sending: str
) -> None:
    async with LoopbackReceiver() as receiver, open_runtime(sender_process=sending) as runtime:
        await runtime.registrations.create(
            org="acme", topics=["punch.create"], url=receiver.url, secret="servicehook-secret-1"
        )
        await anyio.sleep(0.3)  # the worker is idle now
        started = time.time()
        event_id = await runtime.emit("punch.create", PUNCH, org="acme")
        await eventually(lambda: receiver.received)
        request = receiver.received[0]
        assert request.at - started < 0.5  # not the next poll
        assert request.headers["x-servicehook-id"] == event_id
        assert request.json() == PUNCH
        await eventually(lambda: count(runtime, DELIVERIES, status="delivered"))


@SENDING
async def test_a_fast_schedule_gives_exactly_five_attempts_then_dead(
    open_runtime, sending: str
) -> None:
    async with (
        LoopbackReceiver(lambda _r: Reply(status=500)) as receiver,
        open_runtime(sender_process=sending) as runtime,
    ):
        await runtime.registrations.create(
            org="acme", topics=["punch.create"], url=receiver.url, retry_schedule=FAST
        )
        event_id = await runtime.emit("punch.create", PUNCH, org="acme")
        dead = await eventually(lambda: runtime.deliveries.list(org="acme", status="dead"))
        assert len(receiver.received) == 5 and dead[0].attempts == 5
        assert {r.headers["x-servicehook-id"] for r in receiver.received} == {event_id}
        shown = await runtime.deliveries.get(dead[0].id, org="acme")
        assert [a.number for a in shown.attempt_log] == [1, 2, 3, 4, 5]
        assert shown.attempt_log[-1].outcome == "dead"
        assert "HTTP 500" in (shown.last_error or "")


@pytest.mark.parametrize("status", [400, 404, 301])
async def test_any_non_2xx_is_a_failure(open_runtime, status: int) -> None:
    async with (
        LoopbackReceiver(lambda _r: Reply(status=status)) as receiver,
        open_runtime() as runtime,
    ):
        await runtime.registrations.create(
            org="acme",
            topics=["punch.create"],
            url=receiver.url,
            retry_schedule=[0.05],
            max_attempts=2,
        )
        await runtime.emit("punch.create", PUNCH, org="acme")
        await eventually(lambda: runtime.deliveries.list(org="acme", status="dead"))
        assert len(receiver.received) == 2


async def test_a_timeout_is_a_failure(open_runtime) -> None:
    async with LoopbackReceiver(lambda _r: Reply.hang()) as receiver, open_runtime() as runtime:
        await runtime.registrations.create(
            org="acme", topics=["punch.create"], url=receiver.url, timeout=0.2, max_attempts=1
        )
        await runtime.emit("punch.create", PUNCH, org="acme")
        dead = await eventually(lambda: runtime.deliveries.list(org="acme", status="dead"))
        assert "no complete response within 200 ms" in (dead[0].last_error or "")


async def test_redirects_are_not_followed(open_runtime) -> None:
    async with (
        LoopbackReceiver() as target,
        LoopbackReceiver(lambda _r: Reply(302, headers={"Location": target.url})) as first,
        open_runtime() as runtime,
    ):
        await runtime.registrations.create(
            org="acme", topics=["punch.create"], url=first.url, max_attempts=1
        )
        await runtime.emit("punch.create", PUNCH, org="acme")
        await eventually(lambda: runtime.deliveries.list(org="acme", status="dead"))
        assert len(first.received) == 1 and target.received == []


@SENDING
async def test_retry_after_is_honoured(open_runtime, sending: str) -> None:
    answers = iter([Reply(429, headers={"Retry-After": "1"}), Reply()])
    async with (
        LoopbackReceiver(lambda _r: next(answers)) as receiver,
        open_runtime(sender_process=sending) as runtime,
    ):
        await runtime.registrations.create(
            org="acme", topics=["punch.create"], url=receiver.url, retry_schedule=FAST
        )
        await runtime.emit("punch.create", PUNCH, org="acme")
        await eventually(lambda: len(receiver.received) == 2, timeout=5)
        assert receiver.received[1].at - receiver.received[0].at >= 0.95


async def test_a_saturated_registrations_backlog_is_not_rescanned_each_round(
    open_runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each claim passing over a registration at its cap walks that registration's whole
    # backlog. Once one has found nothing else, the next waits out the poll interval.
    empty_passes: list[float] = []

    async def counting(*args: Any, **kwargs: Any) -> list[Claimed]:
        found = await claim(*args, **kwargs)
        if args[5] and not found:
            empty_passes.append(time.monotonic())
        return found

    monkeypatch.setattr(worker_module, "claim", counting)
    settings = WorkerSettings(concurrency=2, registration_concurrency=1, batch=4, poll=30)
    async with (
        LoopbackReceiver(lambda _r: Reply(delay=0.02)) as receiver,
        open_runtime(workers=0) as runtime,
    ):
        await runtime.registrations.create(org="acme", topics=["punch.create"], url=receiver.url)
        await runtime.emit_many("punch.create", [PUNCH] * 40, org="acme")
        client = HttpClient(allow_private=True)
        await client.open()
        worker = Worker(
            runtime.database,
            Directory(runtime.database, runtime.registrations),
            client,
            Wakeup(),
            settings,
        )
        try:
            async with anyio.create_task_group() as group:
                await group.start(worker.run)
                await eventually(lambda: worker.delivered == 40, timeout=20)
                worker.stop()
        finally:
            await client.aclose()
    assert len(receiver.received) == 40
    # Ten rounds of four, each leaving the registration at its cap: one empty pass.
    assert len(empty_passes) == 1


@SENDING
async def test_work_held_past_its_lease_is_not_sent_but_claimed_afresh(
    open_runtime, count, sending: str
) -> None:
    # One at a time, 0.4 s each, on a 2 s lease: the later ones wait in the worker longer
    # than their lease can cover a request (1 s timeout); sent anyway, a claim after the
    # lapse would send them a second time.
    async with (
        LoopbackReceiver(lambda _r: Reply(delay=0.4)) as receiver,
        open_runtime(lease="2", registration_concurrency="1", sender_process=sending) as runtime,
    ):
        await runtime.registrations.create(org="acme", topics=["punch.create"], url=receiver.url)
        ids = await runtime.emit_many("punch.create", [PUNCH] * 8, org="acme")

        async def all_delivered() -> bool:
            return await count(runtime, DELIVERIES, status="delivered") == 8

        await eventually(all_delivered, timeout=20)
        seen = [r.headers["x-servicehook-id"] for r in receiver.received]
        assert sorted(seen) == sorted(ids), "an event was sent twice (or not at all)"


@SENDING
async def test_closing_the_runtime_finishes_in_flight_work(
    open_runtime, count, sending: str
) -> None:
    async with LoopbackReceiver(lambda _r: Reply(delay=0.3)) as receiver:
        async with open_runtime(sender_process=sending) as runtime:
            await runtime.registrations.create(
                org="acme", topics=["punch.create"], url=receiver.url
            )
            await runtime.emit("punch.create", PUNCH, org="acme")
            await eventually(lambda: receiver.received)
        async with open_runtime(workers=0) as runtime:
            assert await count(runtime, DELIVERIES, status="delivered") == 1
