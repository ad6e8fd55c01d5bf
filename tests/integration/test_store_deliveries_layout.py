"""The deliveries table's layout for the hot path (migration 0006): the claim's index
holds open deliveries only, and on PostgreSQL each page keeps room for updated rows."""

from __future__ import annotations

import time

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text

from hookruntime import HookRuntime
from hookruntime.store import Database, migrate, schema_drift
from hookruntime.store.migrate import MIGRATIONS
from hookruntime.store.namespace import NAMESPACE

pytestmark = pytest.mark.anyio

t = NAMESPACE.table
INDEX = NAMESPACE.name("ix_deliveries_next")


async def _index_sql(database: Database) -> str:
    async with database.engine.connect() as conn:
        if database.dialect == "postgresql":
            query = "SELECT indexdef FROM pg_indexes WHERE indexname = :name"
        else:
            query = "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :name"
        return str((await conn.execute(text(query), {"name": INDEX})).scalar_one())


def _downgrade(sync: Connection, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = sync
    command.downgrade(config, revision)


async def test_the_claim_index_holds_only_open_deliveries(database_url: str) -> None:
    database = Database(database_url)
    try:
        await migrate(database)
        assert "next_at IS NOT NULL" in await _index_sql(database)
    finally:
        await database.dispose()


async def test_migration_0006_goes_down_and_up_again(database_url: str) -> None:
    database = Database(database_url)
    try:
        await migrate(database)
        async with database.engine.begin() as conn:
            await conn.run_sync(_downgrade, "0005")
        assert "next_at IS NOT NULL" not in await _index_sql(database)
        await migrate(database)
        assert await schema_drift(database) == []
        assert "next_at IS NOT NULL" in await _index_sql(database)
    finally:
        await database.dispose()


async def test_the_claim_still_finds_due_deliveries_through_the_partial_index(
    runtime: HookRuntime,
) -> None:
    # The claim's condition (next_at <= now) must let the planner use the partial
    # index: on PostgreSQL the plan says so; on both, due deliveries are claimed.
    from hookruntime.queue.claim import claim

    await runtime.registrations.create(
        org="acme", topics=["profile_updated"], url="https://crm.example/hooks"
    )
    await runtime.emit("profile_updated", {"id": "u1"}, org="acme")
    claimed = await claim(runtime.database, "w1", 10, time.time() + 1, 60)
    assert len(claimed) == 1
    postgresql = runtime.database.dialect == "postgresql"
    explain = "EXPLAIN" if postgresql else "EXPLAIN QUERY PLAN"
    async with runtime.database.engine.connect() as conn:
        if postgresql:
            await conn.execute(text("SET enable_seqscan = off"))
        rows = await conn.execute(
            text(
                f"{explain} SELECT id FROM {t('deliveries')} "
                "WHERE next_at <= :now ORDER BY next_at LIMIT 5"
            ),
            {"now": time.time()},
        )
        plan = "\n".join(str(row[-1]) for row in rows)
    assert INDEX in plan
