"""Database URLs and engines: SQLite (a file, WAL) and PostgreSQL from the same models.

``sqlite:///hooks.db`` and ``postgresql://user@host/db`` are accepted as written and
given their async drivers (aiosqlite, asyncpg).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

import anyio
from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import StaticPool

from ..errors import ConfigurationError

__all__ = ["Database", "Dialect", "async_url", "asyncpg_dsn"]

Dialect = Literal["sqlite", "postgresql"]

_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
_ALIASES = {
    "sqlite": "sqlite",
    "sqlite+aiosqlite": "sqlite",
    "postgres": "postgresql",
    "postgresql": "postgresql",
    "postgresql+asyncpg": "postgresql",
}


def async_url(url: str) -> tuple[URL, Dialect]:
    """The SQLAlchemy URL with its async driver, and which dialect it is."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigurationError(f"database URL {url!r} cannot be parsed") from exc
    dialect = _ALIASES.get(parsed.drivername)
    if dialect == "sqlite":
        return parsed.set(drivername=_DRIVERS["sqlite"]), "sqlite"
    if dialect == "postgresql":
        return parsed.set(drivername=_DRIVERS["postgresql"]), "postgresql"
    raise ConfigurationError(
        f"database URL scheme {parsed.drivername!r} is not supported; "
        "use sqlite:///path/to/file.db or postgresql://user@host/db"
    )


def asyncpg_dsn(url: URL, database: str | None = None) -> str:
    """A PostgreSQL URL as asyncpg itself takes it (for LISTEN and admin connections),
    optionally naming another ``database`` on the same server."""
    plain = url.set(drivername="postgresql")
    if database is not None:
        plain = plain.set(database=database)
    return plain.render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the one writer; NORMAL is durable across process
    # crashes in WAL mode (only an OS crash can lose the last transactions).
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


class Database:
    """An async engine and its session factory for one database URL."""

    def __init__(self, url: str) -> None:
        self.url, self.dialect = async_url(url)
        options: dict[str, Any] = {}
        if self.dialect == "sqlite":
            if self.memory:
                options["poolclass"] = StaticPool
            options["connect_args"] = {"timeout": 10}
        else:
            options.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(self.url, **options)
        if self.dialect == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer at a time, and a writer that finds the file locked sleeps
        # in growing steps (busy_timeout). Taking turns in-process instead keeps the
        # outbox, the claims and the result writes from sleeping on each other.
        self._writer = anyio.Lock() if self.dialect == "sqlite" else None

    @property
    def memory(self) -> bool:
        return self.dialect == "sqlite" and self.url.database in (None, "", ":memory:")

    @property
    def path(self) -> Path | None:
        """The database file of a SQLite URL."""
        if self.dialect != "sqlite" or self.memory or self.url.database is None:
            return None
        return Path(self.url.database)

    def session(self) -> AsyncSession:
        return self.sessions()

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[None]:
        """Hold this process's turn to write (SQLite only; PostgreSQL needs none)."""
        if self._writer is None:
            yield
        else:
            async with self._writer:
                yield

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction on a connection, taking this process's turn on SQLite."""
        async with self.writing(), self.engine.begin() as conn:
            yield conn

    async def ping(self) -> None:
        """One round trip; raises when the database cannot be reached."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
