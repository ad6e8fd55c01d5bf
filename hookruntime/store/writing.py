"""What an event's rows are written through: a :class:`Writer` runs a query and inserts
rows, on the runtime's own connection (:class:`Own`) or a host's
(:mod:`hookruntime.queue.writers`), inside whatever transaction that connection is in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

from sqlalchemy import Connection, Insert, Select, Table, text

from . import compiled

__all__ = ["Inserting", "Own", "Query", "Writer", "inserting"]


class Inserting(NamedTuple):
    """An INSERT of ``columns`` into ``table``; ``fast`` runs it on the runtime's own
    connections."""

    table: Table
    columns: tuple[str, ...]
    fast: compiled.Rows[Any]


def inserting(table: Table, row: type[tuple[Any, ...]]) -> Inserting:
    """An INSERT of the columns the ``NamedTuple`` type ``row`` names."""
    return Inserting(table, compiled.columns_of(row), compiled.inserting(table, row))


#: A statement that answers rows: a query, or an INSERT … RETURNING.
Query = Select[Any] | Insert


class Writer(Protocol):
    def rows(self, query: Query) -> Sequence[Any]: ...

    def insert(self, what: Inserting, rows: Sequence[tuple[Any, ...]]) -> None: ...

    def execute(self, sql: str) -> None: ...


class Own:
    """A connection of the runtime's own database."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def rows(self, query: Query) -> Sequence[Any]:
        return self._conn.execute(query).all()

    def insert(self, what: Inserting, rows: Sequence[tuple[Any, ...]]) -> None:
        what.fast.run(self._conn, rows)

    def execute(self, sql: str) -> None:
        self._conn.execute(text(sql))
