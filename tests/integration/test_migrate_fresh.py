"""A new database gets the newest schema at once (``metadata.create_all``, then stamped):
it must be the very schema that replaying every migration builds, on both engines."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import Connection, inspect, text

from hookruntime.store import Database, migrate
from hookruntime.store.migrate import MIGRATIONS, _context, _scripts
from hookruntime.store.namespace import NAMESPACE

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["sqlite", "postgresql"])
async def two_new(
    request: pytest.FixtureRequest, tmp_path: Path, empty_pg_url: str
) -> AsyncIterator[list[str]]:
    if request.param == "sqlite":
        yield [f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"]
        return
    name = f"hookruntime_fresh_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(empty_pg_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield [empty_pg_url, empty_pg_url.rsplit("/", 1)[0] + f"/{name}"]
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def _schema(sync: Connection) -> dict[str, Any]:
    found = inspect(sync)
    tables: dict[str, Any] = {}
    for table in sorted(found.get_table_names(schema=NAMESPACE.schema)):
        if table == NAMESPACE.version_table:
            continue
        tables[table] = {
            # By name: a column a migration added comes last in its table, and where a
            # column sits changes nothing (every statement names its columns).
            "columns": sorted(
                (c["name"], str(c["type"]), c["nullable"]) for c in found.get_columns(table)
            ),
            "primary key": found.get_pk_constraint(table)["constrained_columns"],
            "foreign keys": sorted(
                (
                    tuple(k["constrained_columns"]),
                    k["referred_table"],
                    tuple(k["referred_columns"]),
                    k["options"].get("ondelete"),
                )
                for k in found.get_foreign_keys(table)
            ),
            "unique": sorted(tuple(u["column_names"]) for u in found.get_unique_constraints(table)),
        }
    # Each index as the database itself states it, partial predicates included.
    if sync.dialect.name == "sqlite":
        rows = sync.execute(
            text("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
        )
    else:
        rows = sync.execute(
            text("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'")
        )
    tables["indexes"] = sorted((name, " ".join(sql.split())) for name, sql in rows)
    return tables


async def _read(url: str) -> tuple[dict[str, Any], set[str]]:
    database = Database(url)
    try:
        async with database.connect() as conn:
            schema = await conn.run_sync(_schema)
            heads = await conn.run_sync(lambda sync: set(_context(sync).get_current_heads()))
    finally:
        await database.dispose()
    return schema, heads


async def test_a_new_database_gets_the_schema_the_migrations_build(two_new: list[str]) -> None:
    created, replayed = two_new
    newest = _scripts().get_current_head()
    assert newest is not None and MIGRATIONS.is_dir()
    first = Database(created)
    await migrate(first)  # "head" on a new database: created at once
    await first.dispose()
    second = Database(replayed)
    await migrate(second, newest)  # the head by name: every migration replayed
    await second.dispose()
    (schema, heads), (expected, expected_heads) = await _read(created), await _read(replayed)
    assert heads == expected_heads == {newest}
    for table in expected:
        assert schema[table] == expected[table], table
    assert schema == expected
    assert len(schema["indexes"]) > 5  # the comparison saw the indexes


async def test_a_database_with_a_schema_is_migrated_not_created_again(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    database = Database(url)
    try:
        await migrate(database, "0006")
        async with database.connect() as conn:
            await conn.exec_driver_sql(
                f"INSERT INTO {NAMESPACE.table('orgs')} (id, created_at) VALUES ('acme', 1)"
            )
            await conn.commit()
        await migrate(database)
        async with database.connect() as conn:
            orgs = (await conn.exec_driver_sql(f"SELECT id FROM {NAMESPACE.table('orgs')}")).all()
    finally:
        await database.dispose()
    assert orgs == [("acme",)]
    assert (await _read(url))[1] == {_scripts().get_current_head()}
