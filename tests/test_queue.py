"""The queued path end to end against real loopback receivers, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

import hookruntime.queue.worker as worker_module
from hookruntime import ConflictError, HookRuntime, ValidationError
from hookruntime.http import HttpClient
from hookruntime.queue.claim import Claimed, claim
from hookruntime.queue.wake import Wakeup
from hookruntime.queue.worker import Worker, WorkerSettings
from hookruntime.store.engine import async_url
from hookruntime.store.models import DELIVERIES, EVENTS, REGISTRATIONS
from hookruntime.targets import Directory
from hookruntime.testing import LoopbackReceiver, Received, Reply, eventually

pytestmark = pytest.mark.anyio
PUNCH = {"punch": {"id": 2, "punch_type": "IN"}}
FAST = [0.05] * 4
#: For tests of what the lanes do: run them in the worker's process and in a sender process.
SENDING = pytest.mark.parametrize("sending", ["0", "1"], ids=["one-process", "sender-process"])


@pytest.fixture
def open_runtime(database_url: str, master_key: str):  # type: ignore[no-untyped-def]
    @asynccontextmanager
    async def make(workers: int = 1, **env: str) -> AsyncIterator[HookRuntime]:
        environ = {f"HOOKRUNTIME_{k.upper()}": v for k, v in env.items()}
        async with HookRuntime(
            database_url,
            workers=workers,
            master_key=master_key,
            allow_private_targets=True,
            environ=environ,
        ) as runtime:
            yield runtime

    return make


async def count(runtime: HookRuntime, table, **where: object) -> int:  # type: ignore[no-untyped-def]
    query = select(func.count()).select_from(table)
    for name, value in where.items():
        query = query.where(table.c[name] == value)
    async with runtime.database.engine.connect() as conn:
        return int((await conn.execute(query)).scalar_one())


# -- emit ---------------------------------------------------------------------------


async def test_emit_writes_one_event_and_a_delivery_per_active_registration(open_runtime) -> None:
    async with open_runtime(workers=0) as runtime:
        for url in ("https://a.example/h", "https://b.example/h"):
            await runtime.registrations.create(org="acme", topics=["punch.create"], url=url)
        inactive = await runtime.registrations.create(
            org="acme", topics=["punch.create"], url="https://c.example/h", active=False
        )
        await runtime.registrations.create(
            org="globex", topics=["punch.create"], url="https://d.example/h"
        )
        event_id = await runtime.emit("punch.create", PUNCH, org="acme", key="p2")
        assert await count(runtime, EVENTS, topic="punch.create") == 1
        assert await count(runtime, DELIVERIES, event_id=event_id) == 2
        assert await count(runtime, DELIVERIES, registration_id=inactive.id) == 0


async def test_emit_joins_the_callers_transaction(open_runtime, database_url: str) -> None:
    async with open_runtime(workers=0) as runtime:
        await runtime.registrations.create(
            org="acme", topics=["punch.create"], url="https://a.example/h"
        )
        host_engine = create_async_engine(async_url(database_url)[0])
        try:
            async with AsyncSession(host_engine) as session:
                async with session.begin():
                    kept = await runtime.emit("punch.create", PUNCH, org="acme", session=session)
                with pytest.raises(RuntimeError, match="host failed"):
                    async with session.begin():
                        await runtime.emit("punch.create", PUNCH, org="acme", session=session)
                        raise RuntimeError("host failed")
        finally:
            await host_engine.dispose()
        async with runtime.database.engine.connect() as conn:
            query = select(EVENTS.c.id).where(EVENTS.c.topic == "punch.create")
            ids = (await conn.execute(query)).scalars().all()
        assert ids == [kept]
        assert await count(runtime, DELIVERIES, topic="punch.create") == 1


async def test_emit_refuses_bad_input_precisely(open_runtime) -> None:
    async with open_runtime(workers=0) as runtime:
        with pytest.raises(ValidationError, match="blocking topic: use call"):
            await runtime.emit("user_logged_in", {"id": "u"}, org="acme")
        with pytest.raises(ValidationError, match='"punch" is a required property'):
            await runtime.emit("punch.create", {"id": 1}, org="acme")
        with pytest.raises(ValidationError, match="key"):
            await runtime.emit("punch.create", PUNCH, org="acme", key="k" * 201)
        with pytest.raises(ValidationError, match="org"):
            await runtime.emit("punch.create", PUNCH, org="")
        assert await count(runtime, EVENTS) == 0


async def test_emit_many_writes_all_in_one_go_and_keeps_order(open_runtime) -> None:
    async with open_runtime(workers=0) as runtime:
        await runtime.registrations.create(
            org="acme", topics=["punch.create"], url="https://a.example/h"
        )
        ids = await runtime.emit_many(
            "punch.create", [{"punch": {"id": i}} for i in range(500)], org="acme"
        )
        assert ids == sorted(ids) and len(set(ids)) == 500
        assert await count(runtime, DELIVERIES) == 500


# -- delivery and decisions ---------------------------------------------------------


@SENDING
async def test_an_idle_worker_delivers_a_new_event_at_once(open_runtime, sending: str) -> None:
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


@SENDING
async def test_410_disables_the_registration_and_holds_its_other_deliveries(
    open_runtime, sending: str
) -> None:
    gone = True

    def answer(_r: Received) -> Reply:
        return Reply(410) if gone else Reply()

    async with (
        LoopbackReceiver(answer) as receiver,
        LoopbackReceiver() as ops,
        open_runtime(sender_process=sending) as runtime,
    ):
        reg = await runtime.registrations.create(
            org="acme", topics=["punch.create"], url=receiver.url, ordered=True
        )
        await runtime.registrations.create(org="acme", topics=["webhook.disabled"], url=ops.url)
        await runtime.emit_many("punch.create", [PUNCH] * 3, org="acme", keys=["k"] * 3)
        notice = await eventually(lambda: ops.received)
        assert notice[0].json()["type"] == "webhook.disabled"
        assert notice[0].json()["data"]["webhook_id"] == reg.id
        assert "410" in notice[0].json()["data"]["reason"]
        disabled = await runtime.registrations.get(reg.id, org="acme")
        assert not disabled.active and "410" in (disabled.disabled_reason or "")
        await anyio.sleep(0.3)
        assert len(receiver.received) == 1
        assert len(await runtime.deliveries.list(org="acme", status="dead")) == 1
        held = await runtime.deliveries.list(org="acme", status="pending")
        assert len(held) == 2
        assert all(d.next_at is None for d in held), "held work stays out of the claim's scan"
        gone = False
        await runtime.registrations.update(reg.id, org="acme", rev=disabled.rev, active=True)
        await eventually(lambda: len(receiver.received) == 3)


async def test_disabling_by_hand_holds_deliveries_and_enabling_resumes_them(
    open_runtime,
) -> None:
    async with LoopbackReceiver() as receiver, open_runtime(workers=0) as runtime:
        reg = await runtime.registrations.create(
            org="acme", topics=["punch.create"], url=receiver.url
        )
        await runtime.emit_many("punch.create", [PUNCH] * 3, org="acme")
        off = await runtime.registrations.update(reg.id, org="acme", rev=reg.rev, active=False)
        held = await runtime.deliveries.list(org="acme", status="pending")
        assert [d.next_at for d in held] == [None] * 3
        assert await claim(runtime.database, "w", 10, time.time(), lease=30) == []
        await runtime.registrations.update(reg.id, org="acme", rev=off.rev, active=True)
        resumed = await runtime.deliveries.list(org="acme", status="pending")
        assert all(d.next_at is not None for d in resumed)
        assert len(await claim(runtime.database, "w", 10, time.time() + 1, lease=30)) == 3


async def test_a_registration_failing_past_the_threshold_is_disabled(open_runtime) -> None:
    async with (
        LoopbackReceiver(lambda _r: Reply(503)) as receiver,
        LoopbackReceiver() as ops,
        open_runtime(disable_after_failures="4", disable_after="0") as runtime,
    ):
        reg = await runtime.registrations.create(
            org="acme", topics=["punch.create"], url=receiver.url, retry_schedule=[0.05] * 10
        )
        await runtime.registrations.create(org="acme", topics=["webhook.disabled"], url=ops.url)
        await runtime.emit("punch.create", PUNCH, org="acme")
        notice = await eventually(lambda: ops.received)
        assert notice[0].json()["data"]["webhook_id"] == reg.id
        assert not (await runtime.registrations.get(reg.id, org="acme")).active
        assert 4 <= len(receiver.received) <= 5


async def test_a_success_ends_a_failing_streak(open_runtime) -> None:
    answers: list[int] = []

    def answer(_r: Received) -> Reply:
        return Reply(answers.pop(0) if answers else 200)

    async with (
        LoopbackReceiver(answer) as receiver,
        open_runtime(disable_after_failures="4", disable_after="0") as runtime,
    ):
        reg = await runtime.registrations.create(
            org="acme", topics=["punch.create"], url=receiver.url, retry_schedule=[0.05] * 5
        )
        query = text(
            "SELECT consecutive_failures, failing_since "
            f"FROM {REGISTRATIONS.fullname} WHERE id = :id"
        )

        async def streak() -> tuple[int, float | None]:
            async with runtime.database.engine.connect() as conn:
                row = (await conn.execute(query, {"id": reg.id})).one()
            return row[0], row[1]

        async def ended() -> bool:
            return await streak() == (0, None)

        # Three failures, then a success; twice: six failures, never four in a row.
        for round_ in range(2):
            answers[:] = [503, 503, 503]
            await runtime.emit("punch.create", PUNCH, org="acme")
            await eventually(lambda n=round_: len(receiver.received) == 4 * (n + 1))
            await eventually(ended, timeout=5)
        assert (await runtime.registrations.get(reg.id, org="acme")).active


# -- dead letters and replay --------------------------------------------------------


async def test_dead_deliveries_are_listed_and_replayed(open_runtime) -> None:
    healthy = False
    async with (
        LoopbackReceiver(lambda _r: Reply() if healthy else Reply(500)) as receiver,
        open_runtime() as runtime,
    ):
        reg = await runtime.registrations.create(
            org="acme", topics=["punch.create"], url=receiver.url, max_attempts=1
        )
        await runtime.emit_many("punch.create", [PUNCH] * 4, org="acme")
        dead = await eventually(lambda: _all(runtime.deliveries.list(org="acme", status="dead"), 4))
        healthy = True
        one = await runtime.deliveries.retry(dead[0].id, org="acme")
        assert one.status == "pending" and one.attempts == 0
        await eventually(lambda: _all(runtime.deliveries.list(org="acme", status="delivered"), 1))
        with pytest.raises(ConflictError, match="is delivering"):
            await _retry_in_flight(runtime, dead[1].id)
        progress: list[tuple[int, int]] = []
        retried = await runtime.deliveries.retry_many(
            org="acme",
            registration_id=reg.id,
            progress=lambda done, total: progress.append((done, total)),
        )
        assert retried == 3 and progress[-1] == (3, 3)
        await eventually(lambda: _all(runtime.deliveries.list(org="acme", status="delivered"), 4))
        assert len(receiver.received) == 8


async def _all(listing, n: int):  # type: ignore[no-untyped-def]
    items = await listing
    return items if len(items) == n else None


async def _retry_in_flight(runtime: HookRuntime, delivery_id: str) -> None:
    async with runtime.database.engine.begin() as conn:
        await conn.execute(
            text(f"UPDATE {DELIVERIES.fullname} SET status='delivering' WHERE id=:id"),
            {"id": delivery_id},
        )
    try:
        await runtime.deliveries.retry(delivery_id, org="acme")
    finally:
        async with runtime.database.engine.begin() as conn:
            await conn.execute(
                text(f"UPDATE {DELIVERIES.fullname} SET status='dead' WHERE id=:id"),
                {"id": delivery_id},
            )


async def test_another_orgs_delivery_is_not_found(open_runtime) -> None:
    from hookruntime import NotFoundError

    async with open_runtime(workers=0) as runtime:
        await runtime.registrations.create(
            org="acme", topics=["punch.create"], url="https://a.example/h"
        )
        await runtime.emit("punch.create", PUNCH, org="acme")
        (delivery,) = await runtime.deliveries.list(org="acme")
        with pytest.raises(NotFoundError):
            await runtime.deliveries.get(delivery.id, org="globex")
        with pytest.raises(NotFoundError):
            await runtime.deliveries.retry(delivery.id, org="globex")
        assert await runtime.deliveries.list(org="globex") == []
        with pytest.raises(ValidationError, match="unknown status"):
            await runtime.deliveries.list(org="acme", status="lost")


# -- health, ordering, leases --------------------------------------------------------


@SENDING
async def test_one_slow_receiver_cannot_starve_the_rest(open_runtime, sending: str) -> None:
    busy = 0
    peak = 0

    async def slow(_r: Received) -> Reply:
        nonlocal busy, peak
        busy += 1
        peak = max(peak, busy)
        await anyio.sleep(0.3)
        busy -= 1
        return Reply()

    async with (
        LoopbackReceiver(slow) as sluggish,
        LoopbackReceiver() as quick,
        open_runtime(
            registration_concurrency="2", concurrency="8", sender_process=sending
        ) as runtime,
    ):
        await runtime.registrations.create(org="acme", topics=["punch.create"], url=sluggish.url)
        await runtime.registrations.create(org="acme", topics=["visit.checkin"], url=quick.url)
        await runtime.emit_many("punch.create", [PUNCH] * 12, org="acme")
        await anyio.sleep(0.05)
        started = time.monotonic()
        await runtime.emit_many("visit.checkin", [{"visit": {"id": 1}}] * 20, org="acme")
        await eventually(lambda: len(quick.received) == 20)
        assert time.monotonic() - started < 1.0  # the slow one needs 1.8 s for its 12
        assert peak <= 2
        await eventually(lambda: len(sluggish.received) == 12)


@SENDING
async def test_ordered_registrations_keep_emit_order_per_key_under_failures(
    open_runtime, sending: str
) -> None:
    failures = {"first": 2}

    def flaky(request: Received) -> Reply:
        if request.json()["punch"]["id"] == 0 and failures["first"]:
            failures["first"] -= 1
            return Reply(500)
        return Reply()

    async with (
        LoopbackReceiver(flaky) as ordered,
        LoopbackReceiver() as loose,
        open_runtime(sender_process=sending) as runtime,
    ):
        await runtime.registrations.create(
            org="acme",
            topics=["punch.create"],
            url=ordered.url,
            ordered=True,
            retry_schedule=[0.2] * 4,
        )
        await runtime.registrations.create(org="acme", topics=["punch.create"], url=loose.url)
        items = [{"punch": {"id": i}} for i in range(6)]
        await runtime.emit_many("punch.create", items, org="acme", keys=["b1"] * 6)
        await eventually(lambda: len(loose.received) == 6)
        assert len(ordered.received) < 6 + 2  # the ordered one is still waiting on #0
        await eventually(lambda: len(ordered.received) == 8)
        sequence = [r.json()["punch"]["id"] for r in ordered.received]
        assert sequence == [0, 0, 0, 1, 2, 3, 4, 5]


async def test_a_lapsed_lease_is_claimed_again(open_runtime) -> None:
    async with LoopbackReceiver() as receiver:
        async with open_runtime(workers=0) as runtime:
            await runtime.registrations.create(
                org="acme", topics=["punch.create"], url=receiver.url
            )
            event_id = await runtime.emit("punch.create", PUNCH, org="acme")
            claimed = await claim(runtime.database, "dead-worker", 10, time.time(), lease=0.3)
            assert [c.event_id for c in claimed] == [event_id]
            assert await claim(runtime.database, "other", 10, time.time(), lease=0.3) == []
        async with open_runtime():  # a worker starts; the lease lapses; it takes over
            await eventually(lambda: receiver.received, timeout=5)
        assert receiver.received[0].headers["x-servicehook-id"] == event_id


async def test_a_claim_skips_excluded_registrations_and_is_due_again_at_lease_end(
    open_runtime,
) -> None:
    async with open_runtime(workers=0) as runtime:
        rids = [
            (
                await runtime.registrations.create(
                    org="acme", topics=["punch.create"], url=f"http://127.0.0.1:9/{index}"
                )
            ).id
            for index in range(4)
        ]
        await runtime.emit("punch.create", PUNCH, org="acme")
        now = time.time()
        # Three excluded: the statement pads the list to four with the first id.
        claimed = await claim(runtime.database, "w", 10, now, lease=30, exclude=rids[:3])
        assert [c.registration_id for c in claimed] == [rids[3]]
        assert claimed[0].lease_until == pytest.approx(now + 30, abs=0.01)
        view = await runtime.deliveries.get(claimed[0].id, org="acme")
        assert view.status == "delivering"
        # Due again only if its lease lapses.
        assert view.next_at == pytest.approx(now + 30, abs=0.01)
        rest = await claim(runtime.database, "w", 10, now, lease=30)
        assert sorted(c.registration_id for c in rest) == sorted(rids[:3])
        assert await claim(runtime.database, "w", 10, now + 29, lease=30) == []
        again = await claim(runtime.database, "w2", 10, now + 31, lease=30)
        assert len(again) == 4


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
    open_runtime, sending: str
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


async def test_prune_removes_old_delivered_events_and_keeps_dead_ones(open_runtime) -> None:
    async with (
        LoopbackReceiver(lambda r: Reply(500 if r.json()["punch"]["id"] else 200)) as rx,
        open_runtime() as runtime,
    ):
        await runtime.registrations.create(
            org="acme", topics=["punch.create"], url=rx.url, max_attempts=1
        )
        await runtime.emit_many(
            "punch.create", [{"punch": {"id": i}} for i in range(2)], org="acme"
        )
        await eventually(lambda: _all(runtime.deliveries.list(org="acme"), 2))
        await eventually(lambda: count(runtime, DELIVERIES, status="delivered"))
        await eventually(lambda: count(runtime, DELIVERIES, status="dead"))
        assert await runtime.deliveries.prune(older_than=3600) == 0
        await anyio.sleep(0.05)
        assert await runtime.deliveries.prune(older_than=0.01) >= 1
        remaining = await runtime.deliveries.list(org="acme")
        assert [d.status for d in remaining] == ["dead"]
        assert await count(runtime, EVENTS, topic="punch.create") == 1


@SENDING
async def test_closing_the_runtime_finishes_in_flight_work(open_runtime, sending: str) -> None:
    async with LoopbackReceiver(lambda _r: Reply(delay=0.3)) as receiver:
        async with open_runtime(sender_process=sending) as runtime:
            await runtime.registrations.create(
                org="acme", topics=["punch.create"], url=receiver.url
            )
            await runtime.emit("punch.create", PUNCH, org="acme")
            await eventually(lambda: receiver.received)
        async with open_runtime(workers=0) as runtime:
            assert await count(runtime, DELIVERIES, status="delivered") == 1


async def test_a_killed_sender_process_is_replaced_and_its_work_redone(open_runtime) -> None:
    async with (
        LoopbackReceiver(lambda _r: Reply(delay=0.05)) as receiver,
        open_runtime(sender_process="1", lease="2", concurrency="4") as runtime,
    ):
        await runtime.registrations.create(org="acme", topics=["punch.create"], url=receiver.url)
        ids = await runtime.emit_many("punch.create", [PUNCH] * 60, org="acme")
        await eventually(lambda: len(receiver.received) >= 10)
        worker = runtime.workers[0]
        first = worker.sender_pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        await eventually(lambda: worker.sender_pid not in (None, first), timeout=10)

        async def all_delivered() -> bool:
            return await count(runtime, DELIVERIES, status="delivered") == 60

        await eventually(all_delivered, timeout=30)
        assert {r.headers["x-servicehook-id"] for r in receiver.received} == set(ids)
