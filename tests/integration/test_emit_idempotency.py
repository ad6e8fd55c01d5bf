"""``emit(..., idempotency_key=)`` and ``publish``: a repeat of the same request answers
the first event and writes nothing; the same key with another request is a
ConflictError; concurrent twins, from one runtime or two on the same database, end with
one event; in a host's transaction the key is taken if and only if the host commits.
On SQLite and PostgreSQL, with a real receiver where delivery is the point."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from hookruntime import ConflictError, HookRuntime, Published, ValidationError
from hookruntime.store.engine import async_url
from hookruntime.store.models import DELIVERIES, EVENTS
from hookruntime.testing import LoopbackReceiver, eventually

pytestmark = pytest.mark.anyio
PUNCH = {"punch": {"id": 7, "punch_type": "IN"}}
URL = "https://hr.example/in"


async def events_under(runtime: HookRuntime, key: str) -> list[str]:
    async with runtime.database.engine.connect() as conn:
        query = select(EVENTS.c.id).where(EVENTS.c.idempotency_key == key)
        return list((await conn.execute(query)).scalars().all())


async def deliveries_of(runtime: HookRuntime, event_id: str) -> int:
    async with runtime.database.engine.connect() as conn:
        query = select(func.count()).where(DELIVERIES.c.event_id == event_id)
        return int((await conn.execute(query)).scalar_one())


@pytest.fixture
async def host_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """The host's own engine on the runtime's database (no SAVEPOINT recipe: none used)."""
    engine = create_async_engine(async_url(database_url)[0])
    yield engine
    await engine.dispose()


async def test_the_same_request_again_answers_the_first_event_and_writes_nothing(
    runtime: HookRuntime,
) -> None:
    await runtime.registrations.create(org="acme", topics=["punch.create"], url=URL)
    await runtime.registrations.create(org="acme", topics=["punch.create"], url=URL + "/2")
    first = await runtime.publish(
        "punch.create", [PUNCH], org="acme", keys=["p7"], idempotency_key="order-7"
    )
    assert first == Published(first.ids, 2, replayed=False)
    # Members in another order are the same JSON object, so the same request.
    again = await runtime.publish(
        "punch.create",
        [{"punch": {"punch_type": "IN", "id": 7}}],
        org="acme",
        keys=["p7"],
        idempotency_key="order-7",
    )
    assert again == Published(first.ids, 2, replayed=True)
    assert (
        await runtime.emit("punch.create", PUNCH, org="acme", key="p7", idempotency_key="order-7")
        == first.ids[0]
    )
    assert await events_under(runtime, "order-7") == first.ids
    assert await deliveries_of(runtime, first.ids[0]) == 2
    # Keys are per org: another org's same key is another event.
    other = await runtime.emit(
        "punch.create", PUNCH, org="globex", key="p7", idempotency_key="order-7"
    )
    assert other != first.ids[0]


async def test_the_same_key_with_another_request_is_a_conflict(runtime: HookRuntime) -> None:
    first = await runtime.emit("punch.create", PUNCH, org="acme", idempotency_key="k")
    others = [
        ("punch.create", {"punch": {"id": 8}}, None),  # other data
        ("punch.create", PUNCH, "p7"),  # another ordering key
        ("punch.update", PUNCH, None),  # another topic
    ]
    for topic, data, key in others:
        with pytest.raises(ConflictError, match="'k' was used with a different request"):
            await runtime.emit(topic, data, org="acme", key=key, idempotency_key="k")
    assert await events_under(runtime, "k") == [first]


async def test_concurrent_twins_from_two_runtimes_end_with_one_event(
    runtime: HookRuntime, database_url: str, master_key: str
) -> None:
    await runtime.registrations.create(org="acme", topics=["punch.create"], url=URL)
    answers: list[Published] = []
    async with HookRuntime(database_url, workers=0, master_key=master_key) as twin:

        async def send(side: HookRuntime) -> None:
            answers.append(
                await side.publish("punch.create", [PUNCH], org="acme", idempotency_key="twin")
            )

        async with anyio.create_task_group() as group:
            for index in range(30):
                group.start_soon(send, (runtime, twin)[index % 2])
    assert len({a.ids[0] for a in answers}) == 1
    assert sorted(a.replayed for a in answers) == [False] + [True] * 29
    assert {a.deliveries for a in answers} == {1}
    assert await events_under(runtime, "twin") == answers[0].ids
    assert await deliveries_of(runtime, answers[0].ids[0]) == 1


async def test_a_rolled_back_host_transaction_leaves_no_event_and_frees_the_key(
    runtime: HookRuntime, host_engine: AsyncEngine
) -> None:
    async with AsyncSession(host_engine) as session:
        await session.begin()
        dropped = await runtime.emit(
            "punch.create", PUNCH, org="acme", idempotency_key="host-1", session=session
        )
        # Seen by its own transaction: the same request again is a replay there.
        replay = await runtime.publish(
            "punch.create", [PUNCH], org="acme", idempotency_key="host-1", session=session
        )
        assert replay.ids == [dropped] and replay.replayed
        await session.rollback()
    assert await events_under(runtime, "host-1") == []
    other = {"punch": {"id": 9}}
    kept = await runtime.emit("punch.create", other, org="acme", idempotency_key="host-1")
    assert kept != dropped
    assert await events_under(runtime, "host-1") == [kept]


async def test_a_host_transaction_stays_usable_after_a_replay_or_a_conflict(
    runtime: HookRuntime, host_engine: AsyncEngine
) -> None:
    taken = await runtime.emit("punch.create", PUNCH, org="acme", idempotency_key="taken")
    async with AsyncSession(host_engine) as session, session.begin():
        replay = await runtime.publish(
            "punch.create", [PUNCH], org="acme", idempotency_key="taken", session=session
        )
        assert replay.ids == [taken] and replay.replayed
        with pytest.raises(ConflictError):
            await runtime.emit(
                "punch.create", {"punch": {"id": 1}}, org="acme", idempotency_key="taken",
                session=session,
            )  # fmt: skip
        # No failed statement: PostgreSQL would refuse every later one in this transaction.
        fresh = await runtime.emit(
            "punch.create", PUNCH, org="acme", idempotency_key="fresh", session=session
        )
    assert await events_under(runtime, "taken") == [taken]
    assert await events_under(runtime, "fresh") == [fresh]


async def test_a_replay_is_not_delivered_again(tmp_path, master_key: str) -> None:
    async with (
        LoopbackReceiver() as receiver,
        HookRuntime(
            f"sqlite:///{tmp_path / 'hooks.db'}", master_key=master_key, allow_private_targets=True
        ) as runtime,
    ):
        await runtime.registrations.create(
            org="acme", topics=["punch.create"], url=receiver.url, secret="servicehook-secret-1"
        )
        ids = [
            await runtime.emit("punch.create", PUNCH, org="acme", idempotency_key="once")
            for _ in range(3)
        ]
        await eventually(lambda: receiver.received)
        await anyio.sleep(0.3)
        assert len(set(ids)) == 1
        assert [r.headers["x-servicehook-id"] for r in receiver.received] == ids[:1]


async def test_an_idempotency_key_names_one_event_of_a_bounded_key(runtime: HookRuntime) -> None:
    with pytest.raises(ValidationError, match="idempotency_key: names one event"):
        await runtime.publish("punch.create", [PUNCH, PUNCH], org="acme", idempotency_key="k")
    with pytest.raises(ValidationError, match="keys: give one key"):
        await runtime.publish("punch.create", [PUNCH], org="acme", keys=[], idempotency_key="k")
    for bad in ("", "x" * 201, 7):
        with pytest.raises(ValidationError, match="idempotency_key"):
            await runtime.emit("punch.create", PUNCH, org="acme", idempotency_key=bad)  # type: ignore[arg-type]
    assert await events_under(runtime, "k") == []
