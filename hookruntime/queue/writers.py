"""Where an emit's rows are written: the runtime's own connection (:class:`Own`), or a
synchronous host's, inside the host's transaction: an SQLAlchemy ``Session`` or
``Connection`` (:class:`Through`), or a plain DB-API connection, ``sqlite3`` or
``psycopg`` (:class:`DBAPI`).

The statements are the same Core statements in every case. The runtime's own
connections run them compiled once for its async drivers; a host's SQLAlchemy
connection runs them as Core (its driver may bind parameters differently); a DB-API
connection gets them compiled for its driver's dialect and run on its own cursor.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Table, text
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from ..errors import StoreError, ValidationError
from ..store.writing import Inserting, Own, Query, Writer, inserting

__all__ = ["DBAPI", "Inserting", "Own", "Through", "Writer", "inserting", "writer_for"]


class Through:
    """A host's synchronous SQLAlchemy connection, in whatever transaction it is in."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def rows(self, query: Query) -> Sequence[Any]:
        return self._conn.execute(query).all()

    def insert(self, what: Inserting, rows: Sequence[tuple[Any, ...]]) -> None:
        if rows:
            named = [dict(zip(what.columns, row, strict=True)) for row in rows]
            self._conn.execute(what.table.insert(), named)

    def execute(self, sql: str) -> None:
        self._conn.execute(text(sql))


# Positional parameters, so that a row's values go to the cursor as a tuple.
_SQLITE = SQLiteDialect_pysqlite()
_PSYCOPG = PGDialect_psycopg(paramstyle="format")  # type: ignore[no-untyped-call]
_INSERTS: dict[tuple[str, Table, tuple[str, ...]], tuple[str, list[int]]] = {}


class DBAPI:
    """A host's DB-API connection (``sqlite3`` or ``psycopg``), the dialect its
    statements are compiled for, and the errors its driver raises."""

    def __init__(
        self,
        connection: Any,
        dialect: Dialect,
        errors: type[Exception] | tuple[type[Exception], ...],
    ) -> None:
        self._connection = connection
        self._dialect = dialect
        self._errors = errors

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        cursor = self._connection.cursor()
        try:
            yield cursor
        except self._errors as exc:
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StoreError(f"the host's connection failed: {detail}") from exc
        finally:
            cursor.close()

    def rows(self, query: Query) -> Sequence[Any]:
        statement = query.compile(dialect=self._dialect)
        values = [statement.params[name] for name in statement.positiontup or ()]
        with self._cursor() as cursor:
            cursor.execute(statement.string, values)
            found: Sequence[Any] = cursor.fetchall()
        return found

    def insert(self, what: Inserting, rows: Sequence[tuple[Any, ...]]) -> None:
        if not rows:
            return
        key = (self._dialect.name, what.table, what.columns)
        found = _INSERTS.get(key)
        if found is None:
            statement = what.table.insert().compile(
                dialect=self._dialect, column_keys=list(what.columns)
            )
            order = [what.columns.index(name) for name in statement.positiontup or ()]
            found = _INSERTS[key] = (statement.string, order)
        sql, order = found
        with self._cursor() as cursor:
            cursor.executemany(sql, [tuple(row[i] for i in order) for row in rows])

    def execute(self, sql: str) -> None:
        with self._cursor() as cursor:
            cursor.execute(sql)


_KINDS = "an SQLAlchemy Session or Connection, or a sqlite3 or psycopg connection"


def writer_for(session: object, dialect: str) -> Writer:
    """The writer for a host's ``session``, checked: of a kind we know, on the
    runtime's kind of database (``dialect``), and in a transaction the host commits."""
    if isinstance(session, Session):
        return _on(dialect, session.connection().dialect.name, Through(session.connection()))
    if isinstance(session, Connection):
        return _on(dialect, session.dialect.name, Through(session))
    if isinstance(session, sqlite3.Connection):
        autocommit = getattr(session, "autocommit", None) is True or (
            session.isolation_level is None
        )
        if autocommit and not session.in_transaction:
            raise _autocommit("sqlite3", "BEGIN")
        return _on(dialect, "sqlite", DBAPI(session, _SQLITE, sqlite3.Error))
    psycopg = sys.modules.get("psycopg")
    if psycopg is not None and isinstance(session, psycopg.Connection):
        idle = session.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        if session.autocommit and idle:
            raise _autocommit("psycopg", "conn.transaction()")
        return _on(dialect, "postgresql", DBAPI(session, _PSYCOPG, psycopg.Error))
    raise ValidationError.single("session", f"must be {_KINDS}, not {type(session).__name__}")


def _on(expected: str, actual: str, writer: Writer) -> Writer:
    if actual != expected:
        raise ValidationError.single(
            "session", f"is a {actual} connection; this runtime's database is {expected}"
        )
    return writer


def _autocommit(kind: str, begin: str) -> ValidationError:
    return ValidationError.single(
        "session",
        f"the {kind} connection is in autocommit mode outside a transaction: each row "
        f"would commit on its own; start one first ({begin})",
    )
