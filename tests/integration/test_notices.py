"""The runtime's own ``webhook.*`` notices are written in the transaction of the change
they tell of: a change whose notice cannot be written does not happen, a committed one
has its notice at once, and idle workers are woken to deliver it."""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from hookruntime import HookRuntime
from hookruntime.errors import HookRuntimeError
from hookruntime.queue.claim import claim
from hookruntime.queue.policy import NextState
from hookruntime.queue.records import DisablePolicy, Record, write_records
from hookruntime.store.models import DELIVERIES, EVENTS, REGISTRATIONS
from hookruntime.testing import LoopbackReceiver, eventually

pytestmark = pytest.mark.anyio
PUNCH = {"punch": {"id": 1, "punch_type": "IN", "person": {"id": 1, "first_name": "R"}}}
CHANGES = ["webhook.created", "webhook.updated", "webhook.deleted", "webhook.disabled"]


async def _refuse_notices(runtime: HookRuntime, topic: str) -> None:
    """Make the database refuse the deliveries of ``topic``'s events: the last rows a
    notice writes, after the change and the notice's event row."""
    table = DELIVERIES.name
    if runtime.database.dialect == "postgresql":
        statements = [
            "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN "
            "RAISE EXCEPTION 'refused'; END $$ LANGUAGE plpgsql",
            f"CREATE TRIGGER refuse BEFORE INSERT ON {table} FOR EACH ROW "
            f"WHEN (NEW.topic = '{topic}') EXECUTE FUNCTION refuse()",
        ]
    else:
        statements = [
            f"CREATE TRIGGER refuse BEFORE INSERT ON {table} WHEN NEW.topic = '{topic}' "
            "BEGIN SELECT RAISE(ABORT, 'refused'); END"
        ]
    async with runtime.database.engine.begin() as conn:
        for statement in statements:
            await conn.execute(text(statement))


async def _notices(runtime: HookRuntime) -> list[tuple[str, int]]:
    """Each notice event, with the number of its deliveries."""
    query = (
        select(EVENTS.c.topic, func.count(DELIVERIES.c.id))
        .select_from(EVENTS.outerjoin(DELIVERIES, DELIVERIES.c.event_id == EVENTS.c.id))
        .where(EVENTS.c.topic.in_(CHANGES))
        .group_by(EVENTS.c.id, EVENTS.c.topic, EVENTS.c.created_at)
        .order_by(EVENTS.c.created_at)
    )
    async with runtime.database.connect() as conn:
        return [(topic, count) for topic, count in (await conn.execute(query)).all()]


async def _subscriber(runtime: HookRuntime) -> str:
    subscriber = await runtime.registrations.create(
        org="acme", topics=CHANGES, url="http://127.0.0.1:9/"
    )
    return subscriber.id


async def test_each_committed_change_has_its_notice_when_it_returns(
    database_url: str, master_key: str
) -> None:
    async with HookRuntime(
        database_url, workers=0, master_key=master_key, allow_private_targets=True
    ) as runtime:
        await _subscriber(runtime)
        reg = await runtime.registrations.create(
            org="acme", topics=["punch.create"], url="http://127.0.0.1:9/a"
        )
        reg = await runtime.registrations.update(reg.id, org="acme", rev=reg.rev, priority=3)
        reg = await runtime.registrations.rotate_secret(reg.id, org="acme")
        await runtime.registrations.delete(reg.id, org="acme")
        assert await _notices(runtime) == [
            ("webhook.created", 1),  # the subscriber's own creation, to itself
            ("webhook.created", 1),
            ("webhook.updated", 1),
            ("webhook.updated", 1),
            ("webhook.deleted", 1),
        ]


@pytest.mark.parametrize("topic", ["webhook.created", "webhook.updated", "webhook.deleted"])
async def test_a_change_whose_notice_fails_is_not_made(
    database_url: str, master_key: str, topic: str
) -> None:
    async with HookRuntime(
        database_url, workers=0, master_key=master_key, allow_private_targets=True
    ) as runtime:
        await _subscriber(runtime)
        reg = await runtime.registrations.create(
            org="acme", topics=["punch.create"], url="http://127.0.0.1:9/a"
        )
        before = await _notices(runtime)
        await _refuse_notices(runtime, topic)
        with pytest.raises(HookRuntimeError):
            if topic == "webhook.created":
                await runtime.registrations.create(
                    org="acme", topics=["punch.create"], url="http://127.0.0.1:9/b"
                )
            elif topic == "webhook.updated":
                await runtime.registrations.update(reg.id, org="acme", rev=reg.rev, priority=3)
            else:
                await runtime.registrations.delete(reg.id, org="acme")
        # Neither the change nor any part of its notice (its event row came first).
        assert await _notices(runtime) == before
        listed = await runtime.registrations.list(org="acme")
        assert [(r.id, r.rev) for r in listed if r.id == reg.id] == [(reg.id, reg.rev)]
        assert len(listed) == 2


def _gone(delivery: Any) -> Record:
    now = time.time()
    return Record(
        delivery.id,
        delivery.event_id,
        delivery.registration_id,
        delivery.org_id,
        delivery.topic,
        1,
        NextState("dead", None, disable=True, reason="receiver answered 410 Gone"),
        410,
        "receiver answered HTTP 410",
        1.0,
        None,
        now,
        delivery.lease_token,
    )


@pytest.mark.parametrize("refused", [False, True], ids=["committed", "refused"])
async def test_a_registration_is_disabled_with_its_notice_or_not_at_all(
    database_url: str, master_key: str, refused: bool
) -> None:
    async with HookRuntime(
        database_url, workers=0, master_key=master_key, allow_private_targets=True
    ) as runtime:
        await _subscriber(runtime)
        reg = await runtime.registrations.create(
            org="acme", topics=["punch.create"], url="http://127.0.0.1:9/a"
        )
        await runtime.emit("punch.create", PUNCH, org="acme")
        claimed = await claim(runtime.database, "w", 10, time.time(), lease=60)
        [delivery] = [d for d in claimed if d.topic == "punch.create"]
        before = await _notices(runtime)
        if refused:
            await _refuse_notices(runtime, "webhook.disabled")
            # An IntegrityError on SQLite is passed through as it is (see Database).
            with pytest.raises((HookRuntimeError, DBAPIError), match="refused"):
                await write_records(runtime.database, [_gone(delivery)], DisablePolicy())
        else:
            written = await write_records(runtime.database, [_gone(delivery)], DisablePolicy())
            [disabled] = written.disabled
            assert (disabled.org, disabled.registration_id, disabled.notices) == (
                "acme",
                reg.id,
                1,
            )
        async with runtime.database.connect() as conn:
            active = (
                await conn.execute(
                    select(REGISTRATIONS.c.active).where(REGISTRATIONS.c.id == reg.id)
                )
            ).scalar_one()
            status = (
                await conn.execute(
                    select(DELIVERIES.c.status).where(DELIVERIES.c.id == delivery.id)
                )
            ).scalar_one()
        if refused:
            assert (active, status, await _notices(runtime)) == (True, "delivering", before)
        else:
            assert (active, status) == (False, "dead")
            assert await _notices(runtime) == [*before, ("webhook.disabled", 1)]


async def test_an_idle_worker_in_this_process_is_woken_for_a_notice(master_key: str) -> None:
    # In memory there is no file to watch and no NOTIFY: only the change's own wake-up.
    async with (
        LoopbackReceiver() as receiver,
        HookRuntime(
            "sqlite:///:memory:", workers=1, master_key=master_key, allow_private_targets=True
        ) as runtime,
    ):
        await runtime.registrations.create(org="acme", topics=CHANGES, url=receiver.url)
        await eventually(lambda: len(receiver.received) == 1)
        await anyio.sleep(0.2)  # the worker has looked and found nothing: it sleeps out its poll
        started = time.perf_counter()
        await runtime.registrations.create(
            org="acme", topics=["punch.create"], url="http://127.0.0.1:9/a"
        )
        await eventually(lambda: len(receiver.received) == 2, interval=0.005)
        assert time.perf_counter() - started < 0.6  # the poll is 1 s


async def test_a_worker_of_another_process_is_woken_for_a_notice(
    pg_url: str, master_key: str
) -> None:
    async with (
        LoopbackReceiver() as receiver,
        HookRuntime(pg_url, workers=0, master_key=master_key, allow_private_targets=True) as rt,
        HookRuntime(pg_url, workers=1, master_key=master_key, allow_private_targets=True),
    ):
        await rt.registrations.create(org="acme", topics=CHANGES, url=receiver.url)
        await eventually(lambda: len(receiver.received) == 1)
        await anyio.sleep(0.2)
        started = time.perf_counter()
        await rt.registrations.create(
            org="acme", topics=["punch.create"], url="http://127.0.0.1:9/a"
        )
        await eventually(lambda: len(receiver.received) == 2, interval=0.005)
        assert time.perf_counter() - started < 0.6
