"""leaner hot-path indexes; claimed and held deliveries out of the claim's scan

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 15:30:00

- ``ix_deliveries_next`` also holds ``registration_id``, so a claim passing over
  registrations at their cap filters them without reading their rows.
- Attempts lose two indexes written on every attempt: ``registration_id`` (no query
  uses it) and ``created_at``, now only over blocking calls' attempts, the ones pruned
  by age.
- Deliveries in flight are due at their lease's end, and those held behind an inactive
  registration are not due at all until it is enabled again (as the code now writes
  them), so that neither sits in the claim's range scan.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hookruntime.store.namespace import NAMESPACE

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Names in hookruntime's own namespace (prefix, schema): see hookruntime.store.namespace.
t = NAMESPACE.name
S = NAMESPACE.schema

_CALLS = sa.text("delivery_id IS NULL")


def upgrade() -> None:
    with op.batch_alter_table(t("deliveries"), schema=S) as batch_op:
        batch_op.drop_index(t("ix_deliveries_next"))
        batch_op.create_index(t("ix_deliveries_next"), ["next_at", "registration_id"], unique=False)
    with op.batch_alter_table(t("attempts"), schema=S) as batch_op:
        batch_op.drop_index(t("ix_attempts_registration_id"))
        batch_op.drop_index(t("ix_attempts_created_at"))
        batch_op.create_index(
            t("ix_attempts_calls_created"),
            ["created_at"],
            unique=False,
            sqlite_where=_CALLS,
            postgresql_where=_CALLS,
        )
    op.execute(
        f"UPDATE {NAMESPACE.table('deliveries')} SET next_at = lease_until "
        "WHERE status = 'delivering' AND lease_until IS NOT NULL"
    )
    op.execute(
        f"UPDATE {NAMESPACE.table('deliveries')} SET next_at = NULL "
        "WHERE status IN ('pending', 'failed') AND registration_id IN "
        f"(SELECT id FROM {NAMESPACE.table('registrations')} WHERE NOT active)"
    )


def downgrade() -> None:
    op.execute(
        f"UPDATE {NAMESPACE.table('deliveries')} SET next_at = updated_at "
        "WHERE status IN ('pending', 'failed') AND next_at IS NULL"
    )
    with op.batch_alter_table(t("attempts"), schema=S) as batch_op:
        batch_op.drop_index(t("ix_attempts_calls_created"))
        batch_op.create_index(t("ix_attempts_created_at"), ["created_at"], unique=False)
        batch_op.create_index(t("ix_attempts_registration_id"), ["registration_id"], unique=False)
    with op.batch_alter_table(t("deliveries"), schema=S) as batch_op:
        batch_op.drop_index(t("ix_deliveries_next"))
        batch_op.create_index(t("ix_deliveries_next"), ["next_at"], unique=False)
