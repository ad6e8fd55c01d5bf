"""Schema migrations (Alembic), run programmatically on the runtime's own engine.

On PostgreSQL an advisory lock serialises concurrent migrators, so many worker
processes can start at once. The revision is kept in hookruntime's own version table
(``hookruntime_alembic_version``), never in a host's ``alembic_version``; an install from
before that is first moved into the namespace (see :mod:`.legacy`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text

from ..errors import SchemaNotCurrent, StoreError
from .engine import Database
from .legacy import adopt
from .models import metadata
from .namespace import NAMESPACE

__all__ = ["MIGRATIONS", "migrate", "require_current", "schema_drift"]

MIGRATIONS = Path(__file__).parent / "migrations"
_LOCK_ID = 0x686F6F6B  # "hook"


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


async def migrate(database: Database, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (the newest by default)."""
    revisions = {script.revision for script in _scripts().walk_revisions()}

    def upgrade(sync: Connection) -> None:
        adopt(sync, revisions)
        if revision == "head" and _fresh(sync):
            # Nothing of ours yet: the newest schema at once, then marked as migrated.
            # Replaying every migration costs a new database (each test's, each first
            # start) a table rebuild per SQLite ALTER; the two agree (tests/integration/
            # test_migrate_fresh.py compares them).
            metadata.create_all(sync)
            command.stamp(_config(sync), "head")
            return
        command.upgrade(_config(sync), revision)

    if database.dialect == "postgresql":
        async with database.begin() as conn:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
            if NAMESPACE.schema is not None:
                await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{NAMESPACE.schema}"'))
            await conn.run_sync(upgrade)
        return
    # SQLite's documented way to change tables: foreign keys off (a table rebuilt would
    # otherwise take the rows that reference it along when the old one is dropped), one
    # transaction taken with the write lock, and the keys checked before the commit.
    async with database.writing(), database.connect() as conn:
        await conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        try:
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
            await conn.run_sync(upgrade)
            broken = await conn.run_sync(_broken_keys)
            if broken:
                raise StoreError(f"migrating would break foreign keys: {broken[:5]}")
            await conn.commit()
        finally:
            await conn.rollback()
            await conn.exec_driver_sql("PRAGMA foreign_keys=ON")
            await conn.commit()


def _fresh(sync: Connection) -> bool:
    """Whether the database holds none of hookruntime's tables, nor its version table."""
    present = set(inspect(sync).get_table_names(schema=NAMESPACE.schema))
    ours = {table.name for table in metadata.sorted_tables} | {NAMESPACE.version_table}
    return not present & ours


def _broken_keys(sync: Connection) -> list[Any]:
    """Foreign keys of hookruntime's own tables that point nowhere (a host's are its own
    business, even when broken)."""
    present = set(inspect(sync).get_table_names())
    broken: list[Any] = []
    for table in metadata.sorted_tables:
        if table.name in present:
            broken += sync.exec_driver_sql(f'PRAGMA foreign_key_check("{table.name}")').all()
    return broken


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def _context(sync: Connection, **opts: Any) -> MigrationContext:
    return MigrationContext.configure(
        sync,
        opts={
            "version_table": NAMESPACE.version_table,
            "version_table_schema": NAMESPACE.schema,
            "include_schemas": NAMESPACE.schema is not None,
            "include_name": NAMESPACE.holds,
            **opts,
        },
    )


async def require_current(database: Database) -> None:
    """Raise SchemaNotCurrent unless the schema is at the newest migration. Only reads:
    a SQLite file that does not exist is not created, and nothing is written."""
    newest = set(_scripts().get_heads())
    current: set[str] = set()
    if database.exists():
        async with database.connect() as conn:
            current = set(await conn.run_sync(lambda sync: _context(sync).get_current_heads()))
    if current != newest:
        at = ", ".join(sorted(current)) or "no schema"
        raise SchemaNotCurrent(
            f"the database {database.public_url} is not migrated (at {at}; newest is "
            f"{', '.join(sorted(newest))}): run `hookruntime migrate`"
        )


async def schema_drift(database: Database) -> list[Any]:
    """Differences between the database's schema and the models; empty when they agree."""

    def compare(sync: Connection) -> list[Any]:
        context = _context(sync, compare_type=True)
        return list(compare_metadata(context, metadata))

    async with database.connect() as conn:
        return await conn.run_sync(compare)


def generate(database_url: str, message: str) -> None:  # pragma: no cover - developer tool
    """Write a new migration script from the models' difference with ``database_url``."""
    import anyio

    async def run() -> None:
        database = Database(database_url)
        async with database.engine.begin() as conn:
            await conn.run_sync(
                lambda sync: command.revision(_config(sync), message=message, autogenerate=True)
            )
        await database.dispose()

    anyio.run(run)
