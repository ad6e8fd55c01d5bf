"""worker heartbeats; lease tokens that fence results

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 07:45:00

- ``workers``: one row per live delivery worker, its heartbeat renewed every second or
  so; the deliveries leased to a worker whose heartbeat stopped are taken back at once
  instead of when their leases run out.
- ``deliveries.lease_token``: set afresh by every claim, and required by the result
  write, so that a result from a lease since lost (and claimed by another) changes
  nothing.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hookruntime.store.namespace import NAMESPACE

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Names in hookruntime's own namespace (prefix, schema): see hookruntime.store.namespace.
t = NAMESPACE.name
S = NAMESPACE.schema


def upgrade() -> None:
    op.create_table(
        t("workers"),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("heartbeat_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        schema=S,
    )
    with op.batch_alter_table(t("deliveries"), schema=S) as batch_op:
        batch_op.add_column(sa.Column("lease_token", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table(t("deliveries"), schema=S) as batch_op:
        batch_op.drop_column("lease_token")
    op.drop_table(t("workers"), schema=S)
