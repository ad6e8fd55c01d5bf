"""Alembic environment: migrations run on a connection handed over by
:func:`hookruntime.store.migrate.migrate`, inside its transaction."""

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlmodel.sql.sqltypes import AutoString

from hookruntime.store.models import metadata
from hookruntime.store.namespace import NAMESPACE


def render_item(kind: str, obj: Any, _context: AutogenContext) -> str | Literal[False]:
    """Write SQLModel's string type as plain ``sa.String`` in generated scripts."""
    if kind == "type" and isinstance(obj, AutoString):
        return f"sa.String(length={obj.length})"
    return False


connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `hookruntime migrate`, not the alembic command")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    render_item=render_item,
    # The host's own Alembic history, if any, keeps its alembic_version to itself.
    version_table=NAMESPACE.version_table,
    version_table_schema=NAMESPACE.schema,
    include_schemas=NAMESPACE.schema is not None,
    include_name=NAMESPACE.holds,
)
with context.begin_transaction():
    context.run_migrations()
