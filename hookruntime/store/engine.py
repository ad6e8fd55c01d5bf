"""Database URLs and engines: SQLite (a file, WAL) and PostgreSQL from the same models.

``sqlite:///hooks.db`` and ``postgresql://user@host/db`` are accepted as written and
given their async drivers (aiosqlite, asyncpg).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal, TypeVar

import anyio
from sqlalchemy import Connection, Engine, Executable, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
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


def _sqlite_pragmas(busy_ms: int) -> Callable[[Any, Any], None]:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # WAL lets readers run beside the one writer; NORMAL is durable across process
        # crashes in WAL mode (only an OS crash can lose the last transactions).
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.close()

    return on_connect


def _immediate_transactions(engine: Engine) -> None:
    """Transactions that take the write lock at BEGIN: a locked file fails at once,
    before any work, never halfway through (sqlite3's own BEGIN comes late, before the
    first write, and can then meet a snapshot that cannot be upgraded)."""

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    def on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    event.listen(engine, "connect", on_connect)
    event.listen(engine, "begin", on_begin)


def _is_locked(exc: OperationalError) -> bool:
    return "database is locked" in str(exc.orig)


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
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas(10_000))
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer at a time, and a writer that finds the file locked sleeps
        # in growing steps (busy_timeout). Taking turns in-process instead keeps the
        # outbox, the claims and the result writes from sleeping on each other.
        self._writer = anyio.Lock() if self.dialect == "sqlite" else None
        # Hot-path transactions on a SQLite file (claims, results, the outbox) run inline
        # on a plain sqlite3 connection. Through aiosqlite every statement, fetch, cursor
        # close and commit is a trip through the event loop, and under load each trip
        # waits a full loop turn: a 256-row claim took 10 trips and ~130 ms against
        # ~3 ms of work. On a database thread instead, sqlite3 drops the GIL at every
        # row and waits to take it back from the busy loop (~85 ms for a 256-row
        # result write). Inline, the loop pauses for the few milliseconds of work.
        self._inline: Engine | None = None
        self._waiting: Engine | None = None
        if self.dialect == "sqlite" and not self.memory:
            sync_url = self.url.set(drivername="sqlite+pysqlite")
            # Inline never waits on the file lock (another process writing): it fails
            # at BEGIN and the transaction is run again on a thread that may wait.
            self._inline = create_engine(sync_url, connect_args={"timeout": 0})
            self._waiting = create_engine(sync_url, connect_args={"timeout": 10})
            for engine, busy_ms in ((self._inline, 0), (self._waiting, 10_000)):
                event.listen(engine, "connect", _sqlite_pragmas(busy_ms))
                _immediate_transactions(engine)

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

    async def transaction(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` as one write transaction, committed when it returns.

        ``work`` takes a synchronous connection: on a SQLite file it runs inline, in one
        piece; elsewhere on the async engine's connection (SQLAlchemy's ``run_sync``).
        It may be run twice (the first time rolled back), so it must not act outside
        the database."""
        if self._inline is None or self._waiting is None:
            async with self.begin() as conn:
                return await conn.run_sync(work)
        async with self.writing():
            try:
                return _run(self._inline, work)
            except OperationalError as exc:
                if not _is_locked(exc):
                    raise
            # Another process holds the write lock: wait for it off the event loop.
            return await anyio.to_thread.run_sync(_run, self._waiting, work)

    async def execute(
        self, statement: Executable, rows: list[dict[str, Any]] | None = None
    ) -> None:
        """One write statement (``rows``: executed for each) as its own transaction."""
        await self.transaction(lambda conn: conn.execute(statement, rows))

    async def ping(self) -> None:
        """One round trip; raises when the database cannot be reached."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
        for engine in (self._inline, self._waiting):
            if engine is not None:
                engine.dispose()


def _run(engine: Engine, work: Callable[[Connection], T]) -> T:
    with engine.begin() as conn:
        return work(conn)
