"""Schema migrations (Alembic), run programmatically on the runtime's own engine.

On PostgreSQL an advisory lock serialises concurrent migrators, so many worker
processes can start at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from ..errors import SchemaNotCurrent
from .engine import Database
from .models import metadata

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
    async with database.begin() as conn:
        if database.dialect == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
        await conn.run_sync(lambda sync: command.upgrade(_config(sync), revision))


async def require_current(database: Database) -> None:
    """Raise SchemaNotCurrent unless the schema is at the newest migration. Only reads:
    a SQLite file that does not exist is not created, and nothing is written."""
    newest = set(ScriptDirectory.from_config(_config()).get_heads())
    current: set[str] = set()
    if database.exists():
        async with database.connect() as conn:
            current = set(
                await conn.run_sync(
                    lambda sync: MigrationContext.configure(sync).get_current_heads()
                )
            )
    if current != newest:
        at = ", ".join(sorted(current)) or "no schema"
        raise SchemaNotCurrent(
            f"the database {database.public_url} is not migrated (at {at}; newest is "
            f"{', '.join(sorted(newest))}): run `hookruntime migrate`"
        )


async def schema_drift(database: Database) -> list[Any]:
    """Differences between the database's schema and the models; empty when they agree."""

    def compare(sync: Connection) -> list[Any]:
        context = MigrationContext.configure(sync, opts={"compare_type": True})
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
