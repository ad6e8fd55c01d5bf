"""hookruntime's own namespace in a shared database: prefixed names (or a PostgreSQL
schema), its own Alembic version table, a host's tables and history left alone, and
installs from before moved into the namespace with their rows."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

import hookruntime.store.namespace as namespace_module
from hookruntime import HookRuntime, SchemaNotCurrent
from hookruntime.store import Database, migrate, schema_drift
from hookruntime.store.engine import async_url
from hookruntime.store.migrate import MIGRATIONS, require_current
from hookruntime.store.models import ATTEMPTS, DELIVERIES, EVENTS, ORGS, REGISTRATIONS
from hookruntime.store.namespace import NAMESPACE, Namespace
from hookruntime.testing import LoopbackReceiver, eventually

pytestmark = pytest.mark.anyio

PREFIX = NAMESPACE.prefix
# The newest revision of the migration scripts; "0004" below is the last before the
# namespace, the newest an install from before it can be at.
HEAD = ScriptDirectory(str(MIGRATIONS)).get_current_head()
HOST_REVISION = "3f2a1c9e8b7d"


async def _names(url: str) -> set[str]:
    """Every table, index, constraint-index and sequence name in the database's default
    schema (PostgreSQL) or file (SQLite)."""
    database = Database(url)
    try:
        async with database.connect() as conn:
            if database.dialect == "sqlite":
                query = "SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
            else:
                query = (
                    "SELECT c.relname FROM pg_class c JOIN pg_namespace n "
                    "ON n.oid = c.relnamespace WHERE n.nspname = 'public'"
                )
            return set((await conn.execute(text(query))).scalars().all())
    finally:
        await database.dispose()


async def _rows(url: str, query: str) -> list[tuple[Any, ...]]:
    database = Database(url)
    try:
        async with database.connect() as conn:
            return [tuple(row) for row in (await conn.execute(text(query))).all()]
    finally:
        await database.dispose()


@pytest.fixture
def empty_url(engine_name: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if engine_name == "sqlite":
        return f"sqlite:///{tmp_path / 'shared.db'}"
    return str(request.getfixturevalue("empty_pg_url"))


@pytest.fixture
async def host_url(empty_url: str) -> AsyncIterator[str]:
    """A host's database: its own Alembic history and its own ``events`` and ``orgs``."""
    database = Database(empty_url)
    async with database.begin() as conn:
        for statement in (
            "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)",
            f"INSERT INTO alembic_version VALUES ('{HOST_REVISION}')",
            "CREATE TABLE events (id INTEGER PRIMARY KEY, title VARCHAR(100) NOT NULL)",
            "INSERT INTO events VALUES (1, 'kick-off')",
            "CREATE TABLE orgs (id INTEGER PRIMARY KEY, name VARCHAR(100) NOT NULL)",
            "INSERT INTO orgs VALUES (7, 'Host Inc')",
            "CREATE INDEX ix_events_org_created ON events (title)",
        ):
            await conn.execute(text(statement))
    await database.dispose()
    yield empty_url


async def test_the_runtime_opens_in_a_host_database_and_leaves_its_tables_and_history_alone(
    host_url: str, master_key: str
) -> None:
    before = await _names(host_url)
    async with (
        LoopbackReceiver() as receiver,
        HookRuntime(host_url, master_key=master_key, allow_private_targets=True) as runtime,
    ):
        await runtime.registrations.create(org="acme", topics=["punch.create"], url=receiver.url)
        host = create_async_engine(async_url(host_url)[0])
        try:
            async with AsyncSession(host) as session, session.begin():
                # The host's own write first: it takes SQLite's write lock at once.
                await session.execute(text("INSERT INTO events VALUES (2, 'launch')"))
                emitted = await runtime.emit(
                    "punch.create", {"punch": {"id": 1}}, org="acme", session=session
                )
        finally:
            await host.dispose()
        await eventually(lambda: receiver.received)
        assert receiver.received[0].headers["x-servicehook-id"] == emitted
    # The host's names are all still there, and every name added carries the prefix.
    after = await _names(host_url)
    assert before <= after
    assert all(name.startswith(PREFIX) for name in after - before)
    assert await _rows(host_url, "SELECT version_num FROM alembic_version") == [(HOST_REVISION,)]
    assert await _rows(host_url, "SELECT * FROM events ORDER BY id") == [
        (1, "kick-off"),
        (2, "launch"),
    ]
    assert await _rows(host_url, "SELECT * FROM orgs") == [(7, "Host Inc")]
    ours = f"SELECT version_num FROM {NAMESPACE.table('alembic_version')}"
    assert await _rows(host_url, ours) == [(HEAD,)]


def _upgrade_unprefixed(sync: Connection, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = sync
    command.upgrade(config, revision)


async def _legacy_install(url: str, revision: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The schema as migrations built it before the namespace: the same scripts, with no
    prefix and Alembic's default ``alembic_version``; then a few rows."""
    database = Database(url)
    monkeypatch.setattr(namespace_module, "NAMESPACE", Namespace(prefix=""))
    try:
        async with database.begin() as conn:
            await conn.run_sync(_upgrade_unprefixed, revision)
            for statement in (
                "INSERT INTO orgs VALUES ('acme', 1.0)",
                "INSERT INTO registrations (id, org_id, rev, url, topics, profile, secret, "
                "integration_id, priority, ordered, signed_responses, active, "
                "consecutive_failures, created_at, updated_at) VALUES ('reg_1', 'acme', 'r1', "
                "'http://127.0.0.1:9/h', '[\"punch.create\"]', 'servicehook', 'v1:x', 'i1', "
                "0, false, false, false, 0, 1.0, 1.0)",
                "INSERT INTO registration_topics VALUES ('reg_1', 'punch.create', 'acme')",
                "INSERT INTO events (id, org_id, topic, payload, created_at) "
                "VALUES ('evt_1', 'acme', 'punch.create', '{}', 2.0)",
                "INSERT INTO deliveries (id, event_id, registration_id, org_id, topic, status, "
                "attempts, created_at, updated_at) VALUES ('dlv_1', 'evt_1', 'reg_1', 'acme', "
                "'punch.create', 'dead', 1, 2.0, 3.0)",
                "INSERT INTO attempts (org_id, registration_id, delivery_id, topic, number, "
                "outcome, latency_ms, created_at) VALUES ('acme', 'reg_1', 'dlv_1', "
                "'punch.create', 1, 'failed', 5.0, 3.0)",
            ):
                await conn.execute(text(statement))
    finally:
        monkeypatch.undo()
        await database.dispose()


@pytest.mark.parametrize("revision", ["0001", "0003"])
async def test_an_install_from_before_the_namespace_is_moved_into_it_with_its_rows(
    empty_url: str, revision: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _legacy_install(empty_url, revision, monkeypatch)
    assert "events" in await _names(empty_url)
    database = Database(empty_url)
    try:
        with pytest.raises(SchemaNotCurrent):
            await require_current(database)
        await migrate(database)
        await require_current(database)
        assert await schema_drift(database) == []
        async with database.connect() as conn:
            counts = [
                (await conn.execute(select(func.count()).select_from(table))).scalar()
                for table in (ORGS, REGISTRATIONS, EVENTS, DELIVERIES, ATTEMPTS)
            ]
        assert counts == [1, 1, 1, 1, 1]
    finally:
        await database.dispose()
    # Nothing is left under a name a host could want, not even Alembic's version table.
    assert all(name.startswith(PREFIX) for name in await _names(empty_url))


async def test_foreign_keys_follow_the_moved_tables(
    empty_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Deleting a moved event still takes its delivery along (attempts have no foreign
    # key since migration 0007: the runtime deletes them itself).
    await _legacy_install(empty_url, "0004", monkeypatch)
    database = Database(empty_url)
    try:
        await migrate(database)
        count = select(func.count()).select_from(DELIVERIES)
        async with database.begin() as conn:
            before = (await conn.execute(count)).scalar()
            await conn.execute(EVENTS.delete())
            after = (await conn.execute(count)).scalar()
        assert (before, after) == (1, 0)
    finally:
        await database.dispose()


async def test_a_host_history_sharing_alembic_version_keeps_its_row(
    empty_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _legacy_install(empty_url, "0004", monkeypatch)
    database = Database(empty_url)
    try:
        async with database.begin() as conn:
            await conn.execute(text(f"INSERT INTO alembic_version VALUES ('{HOST_REVISION}')"))
        await migrate(database)
    finally:
        await database.dispose()
    assert await _rows(empty_url, "SELECT version_num FROM alembic_version") == [(HOST_REVISION,)]


_SCRIPT = """
import json, sys, anyio
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from hookruntime import HookRuntime
from hookruntime.store.engine import async_url
from hookruntime.testing import LoopbackReceiver, eventually

async def main(url: str, key: str) -> None:
    async with (
        LoopbackReceiver() as receiver,
        HookRuntime(url, master_key=key, allow_private_targets=True) as runtime,
    ):
        await runtime.registrations.create(org="acme", topics=["punch.create"], url=receiver.url)
        host = create_async_engine(async_url(url)[0])  # the default search_path
        async with AsyncSession(host) as session, session.begin():
            emitted = await runtime.emit(
                "punch.create", {"punch": {"id": 1}}, org="acme", session=session
            )
        await host.dispose()
        await eventually(lambda: receiver.received)
        sent = [r.headers["x-servicehook-id"] for r in receiver.received]
        print(json.dumps({"emitted": emitted, "sent": sent}))

anyio.run(main, *sys.argv[1:])
"""


def _run_with(environ: dict[str, str], url: str, master_key: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKRUNTIME_")}
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, url, master_key],
        env={**env, **environ},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    assert result["sent"] == [result["emitted"]]
    return result


async def test_a_custom_prefix_names_every_table_and_index(tmp_path: Path, master_key: str) -> None:
    path = tmp_path / "custom.db"
    _run_with({"HOOKRUNTIME_TABLE_PREFIX": "acme_hooks_"}, f"sqlite:///{path}", master_key)
    with sqlite3.connect(path) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master")]
    ours = [name for name in names if not name.startswith("sqlite_autoindex_")]
    assert "acme_hooks_events" in ours and "acme_hooks_alembic_version" in ours
    assert all(name.startswith("acme_hooks_") for name in ours), ours


async def test_postgresql_tables_can_live_in_a_schema_of_their_own(
    empty_pg_url: str, master_key: str
) -> None:
    _run_with({"HOOKRUNTIME_SCHEMA": "hooks"}, empty_pg_url, master_key)
    assert await _names(empty_pg_url) == set()  # nothing in public
    tables = await _rows(
        empty_pg_url,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'hooks'",
    )
    assert {name for (name,) in tables} >= {"events", "deliveries", "workers", "alembic_version"}


def test_a_schema_on_sqlite_is_a_configuration_error(tmp_path: Path) -> None:
    script = "from hookruntime.store import Database; import sys; Database(sys.argv[1])"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKRUNTIME_")}
    done = subprocess.run(
        [sys.executable, "-c", script, f"sqlite:///{tmp_path / 'x.db'}"],
        env={**env, "HOOKRUNTIME_SCHEMA": "hooks"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0 and "ConfigurationError" in done.stderr
    assert "HOOKRUNTIME_SCHEMA is for PostgreSQL" in done.stderr


async def test_an_install_from_before_moves_into_its_own_schema_with_its_rows(
    empty_pg_url: str, master_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _legacy_install(empty_pg_url, "0004", monkeypatch)
    _run_with({"HOOKRUNTIME_SCHEMA": "hooks"}, empty_pg_url, master_key)
    assert await _names(empty_pg_url) == set()  # alembic_version went with the rest
    events = await _rows(empty_pg_url, "SELECT id FROM hooks.events ORDER BY id")
    assert ("evt_1",) in events and len(events) >= 2  # kept, and new ones written
    assert await _rows(empty_pg_url, "SELECT * FROM hooks.alembic_version") == [(HEAD,)]


async def test_a_hosts_own_broken_foreign_keys_do_not_stop_the_migration(
    tmp_path: Path,
) -> None:
    path = tmp_path / "host.db"
    with sqlite3.connect(path) as conn:  # foreign keys off, as sqlite3 starts
        conn.execute("CREATE TABLE parents (id INTEGER PRIMARY KEY)")
        conn.execute("CREATE TABLE children (parent_id INTEGER REFERENCES parents (id))")
        conn.execute("INSERT INTO children VALUES (99)")
    database = Database(f"sqlite:///{path}")
    try:
        await migrate(database)
        await require_current(database)
    finally:
        await database.dispose()
    assert await _rows(f"sqlite:///{path}", "SELECT * FROM children") == [(99,)]
