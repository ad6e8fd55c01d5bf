"""events.traceparent: the trace context of the span that emitted an event

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 08:00:00

With OpenTelemetry on, each delivery attempt's span links to the span that emitted its
event; the W3C ``traceparent`` is kept with the event for that. NULL otherwise.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hookruntime.store.namespace import NAMESPACE

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Names in hookruntime's own namespace (prefix, schema): see hookruntime.store.namespace.
t = NAMESPACE.name
S = NAMESPACE.schema


def upgrade() -> None:
    with op.batch_alter_table(t("events"), schema=S) as batch_op:
        batch_op.add_column(sa.Column("traceparent", sa.String(length=55), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table(t("events"), schema=S) as batch_op:
        batch_op.drop_column("traceparent")
