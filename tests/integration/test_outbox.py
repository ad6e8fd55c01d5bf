"""The transactional outbox (queue/outbox.py): what an emit writes, in whose transaction, and
what it refuses; on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from hookruntime import ValidationError
from hookruntime.store.engine import async_url
from hookruntime.store.models import DELIVERIES, EVENTS

pytestmark = pytest.mark.anyio
PUNCH = {"punch": {"id": 2, "punch_type": "IN"}}


async def test_emit_writes_one_event_and_a_delivery_per_active_registration(
    open_runtime, count
) -> None:
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


async def test_emit_joins_the_callers_transaction(open_runtime, count, database_url: str) -> None:
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


async def test_emit_refuses_bad_input_precisely(open_runtime, count) -> None:
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


async def test_emit_many_writes_all_in_one_go_and_keeps_order(open_runtime, count) -> None:
    async with open_runtime(workers=0) as runtime:
        await runtime.registrations.create(
            org="acme", topics=["punch.create"], url="https://a.example/h"
        )
        ids = await runtime.emit_many(
            "punch.create", [{"punch": {"id": i}} for i in range(500)], org="acme"
        )
        assert ids == sorted(ids) and len(set(ids)) == 500
        assert await count(runtime, DELIVERIES) == 500
