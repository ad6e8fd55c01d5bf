"""Hot-path statements: Core statements compiled once per dialect, run through the driver
with rows of positional values.

The schema and the SQL stay those of the models; what is skipped is SQLAlchemy's
per-row parameter processing, measured here at ~8 µs per row: a third of writing an
event and its delivery, and half of recording an attempt. Only for columns whose
values need no conversion (strings, numbers, None).

Many rows at once (:class:`Rows`) go to PostgreSQL as one statement over an array per
column (``unnest``) instead of one execution per row: writing 20,000 attempt results
256 at a time, the server's CPU went from ~105 to ~59 us per row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Insert,
    Select,
    Table,
    TableValuedAlias,
    Update,
    bindparam,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY

__all__ = ["Compiled", "Query", "Rows", "inserting", "updating"]


class Compiled:
    """``statement`` with its bound parameters in ``order``; ``run`` takes tuples in
    that order."""

    def __init__(self, statement: Insert | Update, order: Sequence[str]) -> None:
        self._statement = statement
        self._order = tuple(order)
        self._sql: dict[str, str] = {}

    def sql(self, conn: Connection) -> str:
        dialect = conn.dialect
        found = self._sql.get(dialect.name)
        if found is None:
            compiled = self._statement.compile(dialect=dialect, column_keys=list(self._order))
            if tuple(compiled.positiontup or ()) != self._order:
                raise AssertionError(
                    f"{dialect.name} binds {compiled.positiontup}, expected {self._order}"
                )
            found = self._sql[dialect.name] = compiled.string
        return found

    def run(self, conn: Connection, rows: Sequence[tuple[Any, ...]]) -> int:
        """Run once per row; return how many rows the statement changed in all."""
        if not rows:
            return 0
        return conn.exec_driver_sql(self.sql(conn), list(rows)).rowcount


class Rows:
    """One statement for many rows, in ``each``'s order: on PostgreSQL a single execution
    of ``arrays`` with one array per column, elsewhere the driver's executemany."""

    def __init__(self, each: Compiled, arrays: Compiled) -> None:
        self._each = each
        self._arrays = arrays

    def run(self, conn: Connection, rows: Sequence[tuple[Any, ...]]) -> int:
        """Return how many rows the statement changed (inserted, or matched and updated)."""
        if not rows:
            return 0
        if conn.dialect.name == "postgresql":
            arrays = tuple(map(list, zip(*rows, strict=True)))
            return conn.exec_driver_sql(self._arrays.sql(conn), arrays).rowcount
        return self._each.run(conn, rows)


def _unnest(table: Table, columns: Sequence[str]) -> TableValuedAlias:
    """``unnest($1::type[], …) AS v(column, …)``: the rows, from one array per column."""
    arrays = [bindparam(f"a_{name}", type_=ARRAY(table.c[name].type)) for name in columns]
    return func.unnest(*arrays).table_valued(*columns).render_derived(name="v")


def inserting(table: Table, columns: Sequence[str]) -> Rows:
    """An INSERT of ``columns`` (no RETURNING)."""
    v = _unnest(table, columns)
    return Rows(
        Compiled(table.insert().inline(), columns),
        Compiled(
            table.insert().from_select(list(columns), select(*[v.c[name] for name in columns])),
            [f"a_{name}" for name in columns],
        ),
    )


def updating(
    table: Table,
    keys: Sequence[str],
    columns: Sequence[str],
    constants: dict[str, ColumnElement[Any]],
) -> Rows:
    """An UPDATE of ``columns`` (and ``constants``) of the row whose ``keys`` all equal
    the values given (a row that no longer matches is left alone); rows list
    ``columns`` then ``keys``."""
    each = (
        table.update()
        .where(*[table.c[key] == bindparam(f"b_{key}") for key in keys])
        .values({**{name: bindparam(f"b_{name}") for name in columns}, **constants})
    )
    v = _unnest(table, [*columns, *keys])
    arrays = (
        table.update()
        .where(*[table.c[key] == v.c[key] for key in keys])
        .values({**{name: v.c[name] for name in columns}, **constants})
    )
    return Rows(
        Compiled(each, [f"b_{name}" for name in [*columns, *keys]]),
        Compiled(arrays, [f"a_{name}" for name in [*columns, *keys]]),
    )


class Query:
    """A statement run once per call with named values, its rows returned as they come
    from the driver. Skipped: building the statement's cache key on every execution,
    which for a statement with subqueries cost more than running it."""

    def __init__(self, statement: Insert | Update | Select[Any]) -> None:
        self._statement = statement
        self._sql: dict[str, tuple[str, tuple[str, ...], dict[str, Any]]] = {}

    def rows(self, conn: Connection, values: Mapping[str, Any]) -> Sequence[Any]:
        dialect = conn.dialect
        found = self._sql.get(dialect.name)
        if found is None:
            compiled = self._statement.compile(dialect=dialect)
            names = tuple(compiled.positiontup or ())
            # Values the statement carries itself (e.g. a rendered OFFSET 0); the caller's
            # values take their place.
            own = {name: compiled.binds[name].value for name in names}
            found = self._sql[dialect.name] = (compiled.string, names, own)
        sql, names, own = found
        given = {**own, **values}
        return conn.exec_driver_sql(sql, tuple([given[name] for name in names])).all()
