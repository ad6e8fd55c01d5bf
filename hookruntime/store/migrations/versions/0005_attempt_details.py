"""attempts.response_headers and attempts.call_detail: what the dashboard shows

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 09:00:00

A delivery attempt keeps a bounded, redacted excerpt of its response headers; one attempt
row of each blocking call keeps the call's merged decision, patch conflicts and deadline.
Both NULL on rows written before.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hookruntime.store.namespace import NAMESPACE

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Names in hookruntime's own namespace (prefix, schema): see hookruntime.store.namespace.
t = NAMESPACE.name
S = NAMESPACE.schema


def upgrade() -> None:
    with op.batch_alter_table(t("attempts"), schema=S) as batch_op:
        batch_op.add_column(sa.Column("response_headers", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("call_detail", sa.Text(), nullable=True))


def downgrade() -> None:
    # SQLite drops a column only by rebuilding the table.
    with op.batch_alter_table(t("attempts"), schema=S) as batch_op:
        batch_op.drop_column("call_detail")
        batch_op.drop_column("response_headers")
