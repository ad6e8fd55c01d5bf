"""The hot path's writes after migration 0007: attempts carry no foreign key to their
delivery (the runtime deletes them with it), keyed events alone are in the idempotency
index, and on PostgreSQL the claim finds its rows by primary key."""

from __future__ import annotations

import time

import anyio
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, func, inspect, select, text
from sqlalchemy.exc import IntegrityError

from hookruntime import HookRuntime
from hookruntime.queue.claim import _claim_query, new_lease_token
from hookruntime.store import Database, schema_drift
from hookruntime.store.migrate import MIGRATIONS
from hookruntime.store.models import ATTEMPTS, DELIVERIES
from hookruntime.store.namespace import NAMESPACE
from hookruntime.testing import LoopbackReceiver, Reply, eventually

pytestmark = pytest.mark.anyio

t = NAMESPACE.table


def _downgrade(sync: Connection, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = sync
    command.downgrade(config, revision)


async def _count(runtime: HookRuntime, table, *where) -> int:  # type: ignore[no-untyped-def]
    async with runtime.database.engine.connect() as conn:
        query = select(func.count()).select_from(table).where(*where)
        return int((await conn.execute(query)).scalar_one())


def _counted(runtime: HookRuntime, n: int, table, *where):  # type: ignore[no-untyped-def]
    """A check for ``eventually``: ``table`` holds ``n`` rows matching ``where``."""

    async def check() -> bool:
        return await _count(runtime, table, *where) == n

    return check


def _open(database_url: str, master_key: str, workers: int = 1) -> HookRuntime:
    return HookRuntime(
        database_url, workers=workers, master_key=master_key, allow_private_targets=True
    )


async def test_attempts_carry_no_foreign_key_to_their_delivery(runtime: HookRuntime) -> None:
    async with runtime.database.engine.connect() as conn:
        keys = await conn.run_sync(
            lambda sync: inspect(sync).get_foreign_keys(
                NAMESPACE.name("attempts"), schema=NAMESPACE.schema
            )
        )
    assert keys == []


async def test_a_deleted_registration_takes_its_deliveries_attempts_along(
    database_url: str, master_key: str
) -> None:
    async with LoopbackReceiver() as receiver, _open(database_url, master_key) as runtime:
        gone = await runtime.registrations.create(
            org="acme", topics=["punch.create"], url=receiver.url
        )
        kept = await runtime.registrations.create(
            org="acme", topics=["punch.create"], url=receiver.url + "?kept"
        )
        await runtime.emit_many(
            "punch.create", [{"punch": {"id": i}} for i in range(2)], org="acme"
        )
        await eventually(lambda: len(receiver.received) == 4)
        await eventually(_counted(runtime, 4, ATTEMPTS))
        await runtime.registrations.delete(gone.id, org="acme")
        assert await _count(runtime, DELIVERIES, DELIVERIES.c.registration_id == gone.id) == 0
        assert await _count(runtime, ATTEMPTS, ATTEMPTS.c.registration_id == gone.id) == 0
        assert await _count(runtime, ATTEMPTS, ATTEMPTS.c.registration_id == kept.id) == 2


async def test_pruning_takes_the_pruned_deliveries_attempts_along(
    database_url: str, master_key: str
) -> None:
    def reply(request) -> Reply:  # type: ignore[no-untyped-def]
        return Reply(500 if request.json()["punch"]["id"] else 200)

    async with LoopbackReceiver(reply) as receiver, _open(database_url, master_key) as runtime:
        await runtime.registrations.create(
            org="acme", topics=["punch.create"], url=receiver.url, max_attempts=1
        )
        await runtime.emit_many(
            "punch.create", [{"punch": {"id": i}} for i in range(2)], org="acme"
        )
        await eventually(_counted(runtime, 2, ATTEMPTS))
        await eventually(_counted(runtime, 1, DELIVERIES, DELIVERIES.c.status == "dead"))
        await eventually(_counted(runtime, 1, DELIVERIES, DELIVERIES.c.status == "delivered"))
        await anyio.sleep(0.02)
        assert await runtime.deliveries.prune(older_than=0.01) >= 1
        # The dead delivery stays for replay, with its attempt; the delivered one's went.
        assert await _count(runtime, ATTEMPTS) == 1
        assert await _count(runtime, ATTEMPTS, ATTEMPTS.c.outcome == "dead") == 1


async def test_only_keyed_events_are_in_the_idempotency_index_and_keys_stay_unique(
    runtime: HookRuntime,
) -> None:
    sql = (
        "SELECT indexdef FROM pg_indexes WHERE indexname = :name"
        if runtime.database.dialect == "postgresql"
        else "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :name"
    )
    insert = text(
        f"INSERT INTO {t('events')} (id, org_id, topic, payload, idempotency_key, created_at) "
        "VALUES (:id, 'acme', 'punch.create', '{}', :key, 1.0)"
    )
    async with runtime.database.engine.begin() as conn:
        name = NAMESPACE.name("uq_events_org_idempotency_key")
        definition = (await conn.execute(text(sql), {"name": name})).scalar_one()
        await conn.execute(insert, [{"id": "evt_a", "key": None}, {"id": "evt_b", "key": None}])
        await conn.execute(insert, {"id": "evt_c", "key": "k1"})
    assert "idempotency_key IS NOT NULL" in definition
    with pytest.raises(IntegrityError):
        async with runtime.database.engine.begin() as conn:
            await conn.execute(insert, {"id": "evt_d", "key": "k1"})


async def test_rows_written_at_0006_are_delivered_after_the_upgrade(
    database_url: str, master_key: str
) -> None:
    async with LoopbackReceiver() as receiver:
        async with _open(database_url, master_key, workers=0) as runtime:
            registration = await runtime.registrations.create(
                org="acme", topics=["punch.create"], url=receiver.url
            )
            old = await runtime.emit("punch.create", {"punch": {"id": 1}}, org="acme")
        database = Database(database_url)
        now = time.time()
        try:
            async with database.engine.connect() as conn:
                # As migrate() does on SQLite: a table rebuilt with its foreign keys on
                # would take the rows referencing it along when the old one is dropped.
                if database.dialect == "sqlite":
                    await conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
                await conn.run_sync(_downgrade, "0006")
                await conn.commit()
                for statement, values in (
                    (
                        f"INSERT INTO {t('events')} (id, org_id, topic, payload, "
                        "idempotency_key, created_at) VALUES ('evt_at_0006', 'acme', "
                        "'punch.create', :payload, 'key-1', :now)",
                        {"payload": '{"punch":{"id":2}}'},
                    ),
                    (
                        f"INSERT INTO {t('deliveries')} (id, event_id, registration_id, "
                        "org_id, topic, status, attempts, next_at, created_at, updated_at) "
                        "VALUES ('dlv_at_0006', 'evt_at_0006', :rid, 'acme', 'punch.create', "
                        "'pending', 0, :now, :now, :now)",
                        {"rid": registration.id},
                    ),
                ):
                    await conn.execute(text(statement), {"now": now, **values})
                await conn.commit()
            assert await schema_drift(database) != []  # the key and the constraint are back
        finally:
            await database.dispose()
        async with _open(database_url, master_key) as runtime:
            await eventually(lambda: len(receiver.received) == 2)
            sent = {r.headers["x-servicehook-id"] for r in receiver.received}
            assert sent == {old, "evt_at_0006"}

            async def logged() -> bool:
                return await _count(runtime, ATTEMPTS, ATTEMPTS.c.delivery_id == "dlv_at_0006") == 1

            await eventually(logged)
            assert await schema_drift(runtime.database) == []


async def test_the_claim_finds_its_rows_by_primary_key_whatever_the_table_holds(
    pg_url: str, master_key: str
) -> None:
    # Given "id IN (subquery)", PostgreSQL hash-joined the claimed ids against a scan of
    # every delivery, delivered ones included.
    async with _open(pg_url, master_key, workers=0) as runtime:
        await runtime.registrations.create(
            org="acme", topics=["punch.create"], url="https://crm.example/hooks"
        )
        for _ in range(3):
            await runtime.emit_many(
                "punch.create", [{"punch": {"id": i}} for i in range(1000)], org="acme"
            )
        query = _claim_query(True, 0)
        now = time.time() + 1

        def explain(conn: Connection) -> str:
            conn.exec_driver_sql(f"ANALYZE {t('deliveries')}")
            compiled = query._statement.compile(dialect=conn.dialect)
            values = {
                "now": now,
                "limit": 128,
                "lease_until": now + 60,
                "worker": "w1",
                "token": new_lease_token(),
            }
            rows = conn.exec_driver_sql(
                "EXPLAIN " + compiled.string,
                tuple(values[name] for name in compiled.positiontup or ()),
            ).all()
            return "\n".join(row[0] for row in rows)

        plan = await runtime.database.transaction(explain)
    assert "Seq Scan" not in plan
    assert NAMESPACE.name("deliveries_pkey") in plan


async def test_an_event_is_written_into_its_primary_key_alone_unless_keyed(
    runtime: HookRuntime,
) -> None:
    async with runtime.database.engine.connect() as conn:
        indexes = await conn.run_sync(
            lambda sync: inspect(sync).get_indexes(
                NAMESPACE.name("events"), schema=NAMESPACE.schema
            )
        )
    assert [index["name"] for index in indexes] == [NAMESPACE.name("uq_events_org_idempotency_key")]
