"""Installs from before hookruntime had a namespace of its own: tables named ``events``,
``orgs``, … and the revision kept in Alembic's default ``alembic_version``.

:func:`adopt` moves such an install into the namespace, in the caller's transaction,
before Alembic runs: every table, index, constraint and sequence gets the prefix (and
moves to the schema, if one is set), the revision goes to hookruntime's own version
table, and hookruntime's row leaves ``alembic_version`` (dropped only when that leaves
it empty: a host history sharing it keeps its rows).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection

from sqlalchemy import Column, Connection, MetaData, PrimaryKeyConstraint, String, Table, inspect
from sqlalchemy import text as sql

from .namespace import NAMESPACE

__all__ = ["LEGACY_TABLES", "adopt", "version_table"]

log = logging.getLogger("hookruntime.store")

#: Every table an install before the namespace may have (``workers`` from 0003 on).
LEGACY_TABLES = (
    "orgs",
    "api_keys",
    "registrations",
    "registration_topics",
    "events",
    "deliveries",
    "attempts",
    "workers",
)
# Present at every legacy revision: what tells hookruntime's install from a host's
# tables that merely share a name.
_ALWAYS = set(LEGACY_TABLES) - {"workers"}
_TABLE_NAME = re.compile(r'^CREATE\s+TABLE\s+("?)(\w+)\1')
_CONSTRAINT = re.compile(r'\bCONSTRAINT\s+("?)(\w+)\1')
_INDEX_NAME = re.compile(r'^(CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:IF\s+NOT\s+EXISTS\s+)?)("?)(\w+)\2')


def version_table(metadata: MetaData | None = None) -> Table:
    """Alembic's version table, as Alembic itself creates it, under hookruntime's name."""
    name = NAMESPACE.version_table
    return Table(
        name,
        metadata or MetaData(),
        Column("version_num", String(32), nullable=False),
        PrimaryKeyConstraint("version_num", name=f"{name}_pkc"),
        schema=NAMESPACE.schema,
    )


def adopt(conn: Connection, revisions: Collection[str]) -> str | None:
    """Move a legacy install into the namespace; return its revision (None: nothing to
    adopt, the database is new, already adopted, or holds only a host's history)."""
    inspector = inspect(conn)
    if inspector.has_table(NAMESPACE.version_table, schema=NAMESPACE.schema):
        return None
    if not inspector.has_table("alembic_version"):
        return None
    found = conn.execute(sql("SELECT version_num FROM alembic_version")).scalars().all()
    ours = [str(revision) for revision in found if revision in revisions]
    present = set(inspector.get_table_names()) & set(LEGACY_TABLES)
    if len(ours) != 1 or not present >= _ALWAYS:
        return None
    for table in LEGACY_TABLES:
        if table in present:
            if conn.dialect.name == "postgresql":
                _move_postgresql(conn, table)
            else:
                _move_sqlite(conn, table)
    versions = version_table()
    versions.create(conn)
    conn.execute(versions.insert().values(version_num=ours[0]))
    conn.execute(sql("DELETE FROM alembic_version WHERE version_num = :v"), {"v": ours[0]})
    if len(found) == 1:
        conn.execute(sql("DROP TABLE alembic_version"))
    log.info("moved the install at revision %s into the namespace", ours[0])
    return ours[0]


def _move_postgresql(conn: Connection, table: str) -> None:
    """Rename ``table`` and every name that belongs to it: in PostgreSQL index and
    sequence names share the schema's namespace with tables (``events_pkey`` would
    collide with a host's ``events`` table created later)."""
    oid = conn.execute(sql("SELECT to_regclass(:t)::oid"), {"t": table}).scalar_one()
    indexes = (
        conn.execute(
            sql(
                "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE i.indrelid = :oid"
            ),
            {"oid": oid},
        )
        .scalars()
        .all()
    )
    # Primary keys and unique constraints are renamed with their indexes.
    constraints = (
        conn.execute(
            sql(
                "SELECT conname FROM pg_constraint WHERE conrelid = :oid "
                "AND contype NOT IN ('p', 'u', 'x')"
            ),
            {"oid": oid},
        )
        .scalars()
        .all()
    )
    sequences = (
        conn.execute(
            sql(
                "SELECT c.relname FROM pg_depend d JOIN pg_class c ON c.oid = d.objid "
                "WHERE d.refobjid = :oid AND d.deptype IN ('a', 'i') AND c.relkind = 'S'"
            ),
            {"oid": oid},
        )
        .scalars()
        .all()
    )
    schema = NAMESPACE.schema
    if schema is not None:
        # Indexes, constraints and owned sequences move with their table.
        conn.execute(sql(f'ALTER TABLE "{table}" SET SCHEMA "{schema}"'))
    into = f'"{schema}".' if schema is not None else ""
    new = NAMESPACE.name
    if not NAMESPACE.prefix:
        return
    conn.execute(sql(f'ALTER TABLE {into}"{table}" RENAME TO "{new(table)}"'))
    for index in indexes:
        conn.execute(sql(f'ALTER INDEX {into}"{index}" RENAME TO "{new(index)}"'))
    for constraint in constraints:
        conn.execute(
            sql(
                f'ALTER TABLE {into}"{new(table)}" RENAME CONSTRAINT "{constraint}" '
                f'TO "{new(constraint)}"'
            )
        )
    for sequence in sequences:
        conn.execute(sql(f'ALTER SEQUENCE {into}"{sequence}" RENAME TO "{new(sequence)}"'))


def _move_sqlite(conn: Connection, table: str) -> None:
    """Rename ``table`` (SQLite rewrites the foreign keys that name it) and its indexes,
    which SQLite cannot rename: each is made again under its new name. A table whose
    definition names a constraint is rebuilt under the new name (SQLite's documented
    way to change a definition; foreign keys are off while migrating, see .migrate)."""
    new = NAMESPACE.name(table)
    conn.execute(sql(f'ALTER TABLE "{table}" RENAME TO "{new}"'))
    indexes = conn.execute(
        sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = :t "
            "AND sql IS NOT NULL"
        ),
        {"t": new},
    ).all()
    create = conn.execute(
        sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :t"), {"t": new}
    ).scalar_one()
    renamed = _CONSTRAINT.sub(lambda m: f'CONSTRAINT "{NAMESPACE.name(m[2])}"', create)
    if renamed != create:
        building = f"{new}_rebuilt"
        conn.execute(sql(_TABLE_NAME.sub(f'CREATE TABLE "{building}"', renamed, count=1)))
        conn.execute(sql(f'INSERT INTO "{building}" SELECT * FROM "{new}"'))
        conn.execute(sql(f'DROP TABLE "{new}"'))
        conn.execute(sql(f'ALTER TABLE "{building}" RENAME TO "{new}"'))
    for name, create_index in indexes:
        conn.execute(sql(f'DROP INDEX IF EXISTS "{name}"'))
        conn.execute(sql(_INDEX_NAME.sub(rf'\1"{NAMESPACE.name(name)}"', create_index, count=1)))
