"""deliveries: the claim's index over open deliveries only

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 09:20:00

``ix_deliveries_next`` holds only deliveries with ``next_at`` set (open ones): the
result that finishes a delivery (``next_at`` NULL) adds no entry to it, and the index no
longer grows with every delivered row kept until pruning.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hookruntime.store.namespace import NAMESPACE

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Names in hookruntime's own namespace (prefix, schema): see hookruntime.store.namespace.
t = NAMESPACE.name
S = NAMESPACE.schema

_OPEN = sa.text("next_at IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table(t("deliveries"), schema=S) as batch_op:
        batch_op.drop_index(t("ix_deliveries_next"))
        batch_op.create_index(
            t("ix_deliveries_next"),
            ["next_at", "registration_id"],
            unique=False,
            sqlite_where=_OPEN,
            postgresql_where=_OPEN,
        )


def downgrade() -> None:
    with op.batch_alter_table(t("deliveries"), schema=S) as batch_op:
        batch_op.drop_index(t("ix_deliveries_next"))
        batch_op.create_index(t("ix_deliveries_next"), ["next_at", "registration_id"], unique=False)
