"""attempts without a foreign key to deliveries; leaner event indexes

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 11:10:00

Every recorded attempt paid for the foreign key ``attempts.delivery_id → deliveries``:
a lookup of the delivery and a lock on its row. The key goes (its index stays, for the
delivery's attempt list) and the runtime deletes attempts with their deliveries itself
(``hookruntime.store.cascade``). The unique index over ``(org_id, idempotency_key)``
becomes partial: events emitted without a key, nearly all, add no entry to it. The
index over ``(org_id, created_at)`` goes: no query lists an org's events, and pruning,
by age alone, could not use it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hookruntime.store.namespace import NAMESPACE

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Names in hookruntime's own namespace (prefix, schema): see hookruntime.store.namespace.
t = NAMESPACE.name
S = NAMESPACE.schema

_KEYED = sa.text("idempotency_key IS NOT NULL")
# SQLite's foreign key has no name: batch mode gives it this one, to drop it by.
_FK = f"fk_{t('attempts')}_delivery_id"
_CONVENTION = {"fk": "fk_%(table_name)s_%(column_0_name)s"}


def _delivery_fk() -> str | None:
    """The foreign key's name as the database has it (PostgreSQL named it after the
    table, before any move into the namespace); None on SQLite."""
    for key in sa.inspect(op.get_bind()).get_foreign_keys(t("attempts"), schema=S):
        if key["constrained_columns"] == ["delivery_id"]:
            return key["name"] or None
    return None


def upgrade() -> None:
    name = _delivery_fk()
    with op.batch_alter_table(t("attempts"), schema=S, naming_convention=_CONVENTION) as batch_op:
        batch_op.drop_constraint(name or _FK, type_="foreignkey")
    with op.batch_alter_table(t("events"), schema=S) as batch_op:
        batch_op.drop_index(t("ix_events_org_created"))
        batch_op.drop_constraint(t("uq_events_org_idempotency_key"), type_="unique")
        batch_op.create_index(
            t("uq_events_org_idempotency_key"),
            ["org_id", "idempotency_key"],
            unique=True,
            sqlite_where=_KEYED,
            postgresql_where=_KEYED,
        )


def downgrade() -> None:
    with op.batch_alter_table(t("events"), schema=S) as batch_op:
        batch_op.drop_index(t("uq_events_org_idempotency_key"))
        batch_op.create_unique_constraint(
            t("uq_events_org_idempotency_key"), ["org_id", "idempotency_key"]
        )
        batch_op.create_index(t("ix_events_org_created"), ["org_id", "created_at"], unique=False)
    # Attempts whose delivery is gone would fail the key: they go first.
    attempts = sa.table(t("attempts"), sa.column("delivery_id"), schema=S)
    deliveries = sa.table(t("deliveries"), sa.column("id"), schema=S)
    op.execute(
        attempts.delete().where(
            attempts.c.delivery_id.is_not(None),
            attempts.c.delivery_id.not_in(sa.select(deliveries.c.id)),
        )
    )
    with op.batch_alter_table(t("attempts"), schema=S, naming_convention=_CONVENTION) as batch_op:
        batch_op.create_foreign_key(
            f"{t('attempts')}_delivery_id_fkey",
            t("deliveries"),
            ["delivery_id"],
            ["id"],
            referent_schema=S,
            ondelete="CASCADE",
        )
