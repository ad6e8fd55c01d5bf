"""The outbox's promise under every transaction shape, with the default in-process worker
and a real loopback receiver: an event is sent if and only if the host commits it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from sqlalchemy import Connection, event, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from hookruntime import HookRuntime
from hookruntime.store.engine import async_url
from hookruntime.store.models import DELIVERIES, EVENTS
from hookruntime.testing import LoopbackReceiver, eventually

pytestmark = pytest.mark.anyio
PUNCH = {"punch": {"id": 2, "punch_type": "IN"}}
Emit = Callable[[AsyncSession], Awaitable[str]]


class Host:
    """A runtime with one in-process worker, a receiver registered for ``punch.create``,
    and the host's own engine on the same database."""

    def __init__(self, runtime: HookRuntime, receiver: LoopbackReceiver, engine: AsyncEngine):
        self.runtime = runtime
        self.receiver = receiver
        self.engine = engine

    async def emit(self, session: AsyncSession) -> str:
        return await self.runtime.emit("punch.create", PUNCH, org="acme", session=session)

    def sent(self) -> list[str]:
        return [r.headers["x-servicehook-id"] for r in self.receiver.received]

    async def stored(self) -> set[str]:
        async with self.runtime.database.engine.connect() as conn:
            events = (
                (await conn.execute(select(EVENTS.c.id).where(EVENTS.c.topic == "punch.create")))
                .scalars()
                .all()
            )
            query = select(DELIVERIES.c.event_id).where(DELIVERIES.c.topic == "punch.create")
            deliveries = (await conn.execute(query)).scalars().all()
        assert set(deliveries) <= set(events)
        return set(events)

    async def expect(self, expected: set[str]) -> None:
        """Exactly ``expected`` arrive, once each, and nothing else within half a second."""
        if expected:
            await eventually(lambda: len(self.receiver.received) >= len(expected))
        await anyio.sleep(0.5)
        assert sorted(self.sent()) == sorted(expected)
        assert await self.stored() == expected


@pytest.fixture
def host(database_url: str, master_key: str, engine_name: str):  # type: ignore[no-untyped-def]
    @asynccontextmanager
    async def make() -> AsyncIterator[Host]:
        async with (
            LoopbackReceiver() as receiver,
            HookRuntime(database_url, master_key=master_key, allow_private_targets=True) as runtime,
        ):
            await runtime.registrations.create(
                org="acme", topics=["punch.create"], url=receiver.url, secret="servicehook-secret-1"
            )
            engine = create_async_engine(async_url(database_url)[0])
            if engine_name == "sqlite":
                _real_sqlite_transactions(engine)
            try:
                yield Host(runtime, receiver, engine)
            finally:
                await engine.dispose()

    return make


def _real_sqlite_transactions(engine: AsyncEngine) -> None:
    """SQLAlchemy's recipe for SAVEPOINTs on (aio)sqlite: left to itself the driver begins
    no transaction before the first SAVEPOINT, so releasing it would commit."""

    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN")


class HostFailed(Exception):
    pass


async def test_a_committed_emit_is_delivered_once(host) -> None:
    async with host() as h:
        async with AsyncSession(h.engine) as session, session.begin():
            kept = await h.emit(session)
        await h.expect({kept})


async def test_a_rolled_back_emit_is_never_sent_even_after_a_later_commit(host) -> None:
    async with host() as h:
        async with AsyncSession(h.engine) as session:
            with pytest.raises(HostFailed):
                async with session.begin():
                    await h.emit(session)
                    raise HostFailed
            # The session goes on: a later commit must not hand over the rolled-back emit.
            async with session.begin():
                kept = await h.emit(session)
        await h.expect({kept})


async def test_a_rollback_sends_nothing_and_leaves_no_rows(host) -> None:
    async with host() as h:
        async with AsyncSession(h.engine) as session:
            await h.emit(session)
            await session.rollback()
            await session.commit()  # an empty commit on the same session hands nothing over
        await h.expect(set())


async def test_a_rolled_back_savepoint_drops_only_its_own_emits(host) -> None:
    async with host() as h:
        async with AsyncSession(h.engine) as session, session.begin():
            before = await h.emit(session)
            with pytest.raises(HostFailed):
                async with session.begin_nested():
                    await h.emit(session)
                    raise HostFailed
            async with session.begin_nested():
                inner = await h.emit(session)
            after = await h.emit(session)
        await h.expect({before, inner, after})


async def test_a_committed_savepoint_is_not_sent_when_the_outer_transaction_rolls_back(
    host,
) -> None:
    async with host() as h:
        async with AsyncSession(h.engine) as session:
            with pytest.raises(HostFailed):
                async with session.begin():
                    async with session.begin_nested():
                        await h.emit(session)
                    await anyio.sleep(0.3)  # time for a premature hand-off to be sent
                    raise HostFailed
        await h.expect(set())


async def test_nested_savepoints_hand_over_what_survives_to_the_outermost_commit(host) -> None:
    async with host() as h:
        async with AsyncSession(h.engine) as session, session.begin():
            outer_savepoint = await session.begin_nested()
            kept = await h.emit(session)
            inner_savepoint = await session.begin_nested()
            await h.emit(session)
            await inner_savepoint.rollback()
            await outer_savepoint.commit()
        await h.expect({kept})


async def test_an_outer_rollback_with_a_savepoint_still_open_sends_nothing(host) -> None:
    async with host() as h:
        async with AsyncSession(h.engine) as session:
            await session.begin()
            await h.emit(session)
            await session.begin_nested()
            await h.emit(session)
            await session.rollback()
            async with session.begin():
                kept = await h.emit(session)
        await h.expect({kept})


async def test_interleaved_sessions_each_hand_over_only_their_own_events(host) -> None:
    async with host() as h:
        async with AsyncSession(h.engine) as first, AsyncSession(h.engine) as second:
            await first.begin()
            await second.begin()
            # One writer at a time, so that SQLite's single write lock is never waited on.
            await h.emit(second)
            await second.rollback()
            kept = await h.emit(first)
            savepoint = await first.begin_nested()
            await h.emit(first)
            await savepoint.rollback()
            await second.commit()
            await first.commit()
        await h.expect({kept})


async def test_sessions_used_one_after_another_deliver_what_each_committed(host) -> None:
    async with host() as h:
        async with AsyncSession(h.engine) as first, AsyncSession(h.engine) as second:
            async with first.begin():
                kept = await h.emit(first)
            await second.begin()
            await h.emit(second)
            await second.rollback()
            async with first.begin():
                also = await h.emit(first)
            async with second.begin():
                pass
        await h.expect({kept, also})
