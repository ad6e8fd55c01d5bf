"""Hot-path statements: Core statements compiled once per dialect, run through the driver
with rows of positional values.

The schema and the SQL stay those of the models; what is skipped is SQLAlchemy's
per-row parameter processing (see the README's "Measured design choices"). Only for
columns whose values need no conversion (strings, numbers, None). Each statement is
built from a ``NamedTuple`` whose fields name its columns, and runs rows of that type,
so a row cannot put a value in the wrong column.

Many rows at once (:class:`Rows`) go to PostgreSQL as one statement over an array per
column (``unnest``) instead of one execution per row (the README's Performance section
has what that saves).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Generic, TypeVar, cast

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

__all__ = ["Compiled", "Query", "Rows", "columns_of", "inserting", "updating"]

#: A ``NamedTuple`` type: its fields name the columns, in the order its rows hold them.
Row = TypeVar("Row", bound=tuple[Any, ...])


def columns_of(row: type[tuple[Any, ...]]) -> tuple[str, ...]:
    """The field names of the ``NamedTuple`` type ``row``."""
    fields = cast(Any, row).__dict__.get("_fields")
    if not isinstance(fields, tuple):
        raise TypeError(f"{row.__name__} is not a NamedTuple")
    return fields


class Compiled(Generic[Row]):
    """``statement`` with one bound parameter per field of ``row`` (named ``prefix`` +
    field); ``run`` takes rows of that type."""

    def __init__(self, statement: Insert | Update, row: type[Row], prefix: str = "") -> None:
        self._statement = statement
        self._order = tuple(prefix + name for name in columns_of(row))
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

    def run(self, conn: Connection, rows: Sequence[Row]) -> int:
        """Run once per row; return how many rows the statement changed in all."""
        if not rows:
            return 0
        # Plain tuples: the driver binds a tuple subclass by the slower sequence protocol.
        return conn.exec_driver_sql(self.sql(conn), list(map(tuple, rows))).rowcount


class Rows(Generic[Row]):
    """One statement for many rows of one type: on PostgreSQL a single execution of
    ``arrays`` with one array per column, elsewhere the driver's executemany."""

    def __init__(self, each: Compiled[Row], arrays: Compiled[Row]) -> None:
        self._each = each
        self._arrays = arrays

    def run(self, conn: Connection, rows: Sequence[Row]) -> int:
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


def inserting(table: Table, row: type[Row]) -> Rows[Row]:
    """An INSERT of the columns ``row`` names (no RETURNING), which it lists in the
    table's order (the order the statement binds them in)."""
    columns = columns_of(row)
    in_order = [c.name for c in table.columns if c.name in columns]
    if list(columns) != in_order:
        raise TypeError(f"{row.__name__} must list its columns in {table.name}'s order")
    v = _unnest(table, columns)
    return Rows(
        Compiled(table.insert().inline(), row),
        Compiled(
            table.insert().from_select(list(columns), select(*[v.c[name] for name in columns])),
            row,
            "a_",
        ),
    )


def updating(
    table: Table,
    row: type[Row],
    keys: Sequence[str],
    constants: dict[str, ColumnElement[Any]],
) -> Rows[Row]:
    """An UPDATE of the row whose ``keys`` all equal the values given (a row that no
    longer matches is left alone), setting ``row``'s other fields (and ``constants``);
    ``row`` lists those columns first, then ``keys``."""
    fields = columns_of(row)
    columns = fields[: len(fields) - len(keys)]
    if fields[len(columns) :] != tuple(keys):
        raise TypeError(f"{row.__name__} must end with its keys {tuple(keys)}")
    each = (
        table.update()
        .where(*[table.c[key] == bindparam(f"b_{key}") for key in keys])
        .values({**{name: bindparam(f"b_{name}") for name in columns}, **constants})
    )
    v = _unnest(table, fields)
    arrays = (
        table.update()
        .where(*[table.c[key] == v.c[key] for key in keys])
        .values({**{name: v.c[name] for name in columns}, **constants})
    )
    return Rows(Compiled(each, row, "b_"), Compiled(arrays, row, "a_"))


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
