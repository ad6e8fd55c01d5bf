"""The store on both engines: migrations equal the models, WAL, secrets sealed at rest."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import anyio
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, inspect, text

from hookruntime import ConfigurationError, HookRuntime
from hookruntime.store import Database, migrate, schema_drift
from hookruntime.store.migrate import MIGRATIONS
from hookruntime.store.namespace import NAMESPACE
from hookruntime.testing import eventually

pytestmark = pytest.mark.anyio

t = NAMESPACE.table


async def test_migrating_an_empty_sqlite_database_gives_the_models_schema(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        await migrate(database)
        assert await schema_drift(database) == []
    finally:
        await database.dispose()


async def test_migrating_an_empty_postgresql_database_gives_the_models_schema(
    empty_pg_url: str,
) -> None:
    database = Database(empty_pg_url)
    try:
        await migrate(database)
        assert await schema_drift(database) == []
        await migrate(database)  # idempotent: a second run is a no-op
    finally:
        await database.dispose()


async def test_migrating_down_to_0002_and_up_again_keeps_the_data_and_the_models_schema(
    database_url: str,
) -> None:
    database = Database(database_url)

    def downgrade(sync: Connection, revision: str) -> None:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = sync
        command.downgrade(config, revision)

    try:
        await migrate(database)
        async with database.engine.begin() as conn:
            await conn.execute(
                text(f"INSERT INTO {t('orgs')} (id, created_at) VALUES ('acme', 1.0)")
            )
            await conn.run_sync(downgrade, "0002")
        async with database.engine.connect() as conn:
            tables = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
            columns = await conn.run_sync(
                lambda sync: [
                    c["name"] for c in inspect(sync).get_columns(NAMESPACE.name("deliveries"))
                ]
            )
        assert NAMESPACE.name("workers") not in tables and "lease_token" not in columns
        await migrate(database)
        assert await schema_drift(database) == []
        async with database.engine.connect() as conn:
            orgs = (await conn.execute(text(f"SELECT id FROM {t('orgs')}"))).scalars().all()
        assert orgs == ["acme"]
    finally:
        await database.dispose()


async def test_schema_drift_sees_a_missing_column(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'drift.db'}")
    try:
        await migrate(database)
        async with database.engine.begin() as conn:
            await conn.execute(text(f"ALTER TABLE {t('deliveries')} DROP COLUMN worker"))
        drift = await schema_drift(database)
        assert any("worker" in repr(item) for item in drift)
    finally:
        await database.dispose()


async def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path, master_key: str) -> None:
    url = f"sqlite:///{tmp_path / 'wal.db'}"
    async with (
        HookRuntime(url, workers=0, master_key=master_key) as runtime,
        runtime.database.engine.connect() as conn,
    ):
        assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
        assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1


async def test_a_write_waits_off_the_loop_while_another_process_holds_the_sqlite_lock(
    tmp_path: Path, master_key: str
) -> None:
    path = tmp_path / "locked.db"
    async with HookRuntime(f"sqlite:///{path}", workers=0, master_key=master_key) as runtime:
        await runtime.registrations.create(
            org="acme", topics=["punch.create"], url="https://example.com/hook"
        )
        other = sqlite3.connect(path, isolation_level=None)  # as another process would
        other.execute("BEGIN IMMEDIATE")
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await anyio.sleep(0.01)
                ticks += 1

        async with anyio.create_task_group() as group:
            group.start_soon(tick)
            emitting = anyio.Event()

            async def emit() -> None:
                emitting.set()
                await runtime.emit("punch.create", {"punch": {"id": 1}}, org="acme")

            group.start_soon(emit)
            await emitting.wait()
            await anyio.sleep(0.3)
            before = ticks
            assert await runtime.deliveries.list(org="acme") == []  # still waiting
            other.execute("COMMIT")
            await eventually(lambda: runtime.deliveries.list(org="acme"))
            group.cancel_scope.cancel()
        other.close()
        assert before >= 10, "the event loop froze while the write waited for the lock"


async def test_a_grown_wal_is_checkpointed_into_the_database_file(
    tmp_path: Path, master_key: str
) -> None:
    # Inline writers never checkpoint themselves; a thread does once the WAL passes 4 MB.
    path = tmp_path / "wal.db"
    async with HookRuntime(f"sqlite:///{path}", workers=0, master_key=master_key) as runtime:
        await runtime.registrations.create(
            org="acme", topics=["punch.create"], url="https://example.com/hook"
        )
        before = path.stat().st_size
        big = {"punch": {"id": 1, "note": "x" * 600_000}}
        await runtime.emit_many("punch.create", [big] * 10, org="acme")
        await eventually(lambda: path.stat().st_size > before + 5_000_000)


async def test_secrets_and_header_values_are_encrypted_at_rest(runtime: HookRuntime) -> None:
    reg = await runtime.registrations.create(
        org="acme",
        topics=["profile_updated"],
        url="https://crm.example/hooks",
        secret="signature_secret_plain",
        headers={"X-Shared-Token": "header-secret-value"},
    )
    async with runtime.database.engine.connect() as conn:
        row = (await conn.execute(text(f"SELECT * FROM {t('registrations')}"))).mappings().one()
    dump = repr(dict(row))
    assert "signature_secret_plain" not in dump
    assert "header-secret-value" not in dump
    assert "X-Shared-Token" not in dump
    assert row["secret"].startswith("v1:")
    assert reg.secret == "signature_secret_plain"


async def test_the_same_models_serve_both_engines(runtime: HookRuntime) -> None:
    await runtime.registrations.create(
        org="acme", topics=["punch.create"], url="https://hr.example/in"
    )
    async with runtime.database.engine.connect() as conn:
        count = (
            await conn.execute(text(f"SELECT count(*) FROM {t('registration_topics')}"))
        ).scalar()
    assert count == 1


async def test_postgresql_needs_a_master_key(pg_url: str) -> None:
    with pytest.raises(ConfigurationError, match="HOOKRUNTIME_MASTER_KEY is required"):
        async with HookRuntime(pg_url, workers=0, environ={}):
            pass


async def test_sqlite_default_keeps_its_generated_key_beside_the_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hooks.db'}"
    async with HookRuntime(url, workers=0, environ={}) as runtime:
        reg = await runtime.registrations.create(
            org="acme", topics=["profile_updated"], url="https://crm.example/h"
        )
    key_file = tmp_path / "hooks.db.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    async with HookRuntime(url, workers=0, environ={}) as runtime:  # reopened: same key
        again = await runtime.registrations.get(reg.id, org="acme")
    assert again.rev == reg.rev
