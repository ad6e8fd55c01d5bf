"""Database URLs and engines: SQLite (a file, WAL) and PostgreSQL from the same models.

``sqlite:///hooks.db`` and ``postgresql://user@host/db`` are accepted as written and
given their async drivers (aiosqlite, asyncpg).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal, TypeVar

import anyio
from sqlalchemy import Connection, Executable, event, text
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
from .failures import public_url, store_errors
from .namespace import NAMESPACE
from .sqlite import InlineWriter, private_file, sqlite_pragmas

__all__ = ["BUSY_TIMEOUT", "Database", "Dialect", "async_url", "asyncpg_dsn"]

#: Seconds a SQLite write waits for another process's lock before it fails.
BUSY_TIMEOUT = 10.0

T = TypeVar("T")

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


class Database:
    """An async engine and its session factory for one database URL.

    :meth:`connect`, :meth:`session`, :meth:`begin` and :meth:`transaction` raise the
    database's failures as :class:`~hookruntime.errors.StoreError` (see :mod:`.failures`);
    ``engine`` used directly does not (the dashboard's and the metrics' reads, and the
    test helpers', still do so). A SQLite file is created readable by its owner only: it
    holds event payloads."""

    def __init__(self, url: str) -> None:
        self.url, self.dialect = async_url(url)
        NAMESPACE.check()
        if self.dialect == "sqlite" and NAMESPACE.schema is not None:
            raise ConfigurationError("HOOKRUNTIME_SCHEMA is for PostgreSQL; SQLite takes a prefix")
        path = self.path
        if path is not None and not path.parent.is_dir():
            raise ConfigurationError(
                f"the folder {str(path.parent)!r} of the SQLite database does not exist"
            )
        busy = BUSY_TIMEOUT
        options: dict[str, Any] = {}
        if self.dialect == "sqlite":
            if self.memory:
                options["poolclass"] = StaticPool
            options["connect_args"] = {"timeout": busy}
        else:
            options.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(self.url, **options)
        if self.dialect == "sqlite":
            event.listen(self.engine.sync_engine, "connect", sqlite_pragmas(int(busy * 1000)))
        if path is not None:
            event.listen(self.engine.sync_engine, "do_connect", private_file(path))
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer at a time, and a writer that finds the file locked sleeps
        # in growing steps (busy_timeout). Taking turns in-process instead keeps the
        # outbox, the claims and the result writes from sleeping on each other.
        self._writer = anyio.Lock() if self.dialect == "sqlite" else None
        # Hot-path writes on a SQLite file run inline, in one piece (see .sqlite).
        self._inline = InlineWriter(self.url, path, busy) if path is not None else None

    @property
    def memory(self) -> bool:
        return self.dialect == "sqlite" and self.url.database in (None, "", ":memory:")

    @property
    def path(self) -> Path | None:
        """The database file of a SQLite URL."""
        if self.dialect != "sqlite" or self.memory or self.url.database is None:
            return None
        return Path(self.url.database)

    @property
    def public_url(self) -> str:
        """The URL without its password, for messages."""
        return public_url(self.url)

    def exists(self) -> bool:
        """False for a SQLite file not created yet (PostgreSQL: always True)."""
        path = self.path
        return path is None or os.path.exists(path)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """An ORM session (the control plane's reads and writes)."""
        with store_errors(self.url):
            async with self.sessions() as session:
                yield session

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads."""
        with store_errors(self.url):
            async with self.engine.connect() as conn:
                yield conn

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
        with store_errors(self.url):
            async with self.writing(), self.engine.begin() as conn:
                yield conn

    async def transaction(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` as one write transaction, committed when it returns.

        ``work`` takes a synchronous connection: on a SQLite file it runs inline, in one
        piece; elsewhere on the async engine's connection (SQLAlchemy's ``run_sync``).
        It may be run twice (the first time rolled back), so it must not act outside
        the database. An IntegrityError is left to the caller, which knows what the
        constraint means; every other failure is a StoreError."""
        with store_errors(self.url, integrity=False):
            if self._inline is None:
                async with self.writing(), self.engine.begin() as conn:
                    return await conn.run_sync(work)
            async with self.writing():
                return await self._inline.run(work)

    async def execute(
        self, statement: Executable, rows: list[dict[str, Any]] | None = None
    ) -> None:
        """One write statement (``rows``: executed for each) as its own transaction."""
        await self.transaction(lambda conn: conn.execute(statement, rows))

    async def ping(self) -> None:
        """One round trip; raises StoreUnavailable when the database cannot be reached."""
        async with self.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._inline is not None:
            self._inline.close()
