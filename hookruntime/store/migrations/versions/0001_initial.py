"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 11:14:11.284020
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hookruntime.store.namespace import NAMESPACE

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Names in hookruntime's own namespace (prefix, schema): see hookruntime.store.namespace.
t = NAMESPACE.name
ref = NAMESPACE.ref
S = NAMESPACE.schema


def upgrade() -> None:
    op.create_table(
        t("events"),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("topic", sa.String(length=128), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("org_id", "idempotency_key", name=t("uq_events_org_idempotency_key")),
        schema=S,
    )
    with op.batch_alter_table(t("events"), schema=S) as batch_op:
        batch_op.create_index(t("ix_events_org_created"), ["org_id", "created_at"], unique=False)

    op.create_table(
        t("orgs"),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        schema=S,
    )
    op.create_table(
        t("api_keys"),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=32), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("revoked_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"],
            [ref("orgs.id")],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("prefix"),
        schema=S,
    )
    with op.batch_alter_table(t("api_keys"), schema=S) as batch_op:
        batch_op.create_index(t("ix_api_keys_org_id"), ["org_id"], unique=False)

    op.create_table(
        t("registrations"),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("rev", sa.String(length=40), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("topics", sa.JSON(), nullable=False),
        sa.Column("profile", sa.String(length=32), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("previous_secret", sa.Text(), nullable=True),
        sa.Column("previous_secret_until", sa.Float(), nullable=True),
        sa.Column("headers", sa.Text(), nullable=True),
        sa.Column("integration_id", sa.String(length=36), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("on_failure", sa.String(length=8), nullable=True),
        sa.Column("timeout", sa.Float(), nullable=True),
        sa.Column("ordered", sa.Boolean(), nullable=False),
        sa.Column("retry_schedule", sa.JSON(), nullable=True),
        sa.Column("max_attempts", sa.Integer(), nullable=True),
        sa.Column("signed_responses", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", sa.String(length=500), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("failing_since", sa.Float(), nullable=True),
        sa.Column("description", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            [ref("orgs.id")],
        ),
        sa.PrimaryKeyConstraint("id"),
        schema=S,
    )
    with op.batch_alter_table(t("registrations"), schema=S) as batch_op:
        batch_op.create_index(t("ix_registrations_org_id"), ["org_id"], unique=False)

    op.create_table(
        t("deliveries"),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("event_id", sa.String(length=40), nullable=False),
        sa.Column("registration_id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("topic", sa.String(length=128), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_at", sa.Float(), nullable=True),
        sa.Column("lease_until", sa.Float(), nullable=True),
        sa.Column("worker", sa.String(length=64), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=1000), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("delivered_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["event_id"], [ref("events.id")], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["registration_id"], [ref("registrations.id")], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        schema=S,
    )
    with op.batch_alter_table(t("deliveries"), schema=S) as batch_op:
        batch_op.create_index(t("ix_deliveries_event_id"), ["event_id"], unique=False)
        batch_op.create_index(t("ix_deliveries_next"), ["next_at"], unique=False)
        batch_op.create_index(t("ix_deliveries_org"), ["org_id", "created_at"], unique=False)
        batch_op.create_index(
            t("ix_deliveries_registration_key"), ["registration_id", "key"], unique=False
        )

    op.create_table(
        t("registration_topics"),
        sa.Column("registration_id", sa.String(length=40), nullable=False),
        sa.Column("topic", sa.String(length=128), nullable=False),
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["registration_id"], [ref("registrations.id")], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("registration_id", "topic"),
        schema=S,
    )
    with op.batch_alter_table(t("registration_topics"), schema=S) as batch_op:
        batch_op.create_index(
            t("ix_registration_topics_org_topic"), ["org_id", "topic"], unique=False
        )

    op.create_table(
        t("attempts"),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("registration_id", sa.String(length=40), nullable=False),
        sa.Column("delivery_id", sa.String(length=40), nullable=True),
        sa.Column("call_id", sa.String(length=40), nullable=True),
        sa.Column("event_id", sa.String(length=40), nullable=True),
        sa.Column("topic", sa.String(length=128), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("error", sa.String(length=1000), nullable=True),
        sa.Column("response", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["delivery_id"], [ref("deliveries.id")], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        schema=S,
    )
    with op.batch_alter_table(t("attempts"), schema=S) as batch_op:
        batch_op.create_index(t("ix_attempts_created_at"), ["created_at"], unique=False)
        batch_op.create_index(t("ix_attempts_delivery_id"), ["delivery_id"], unique=False)
        batch_op.create_index(t("ix_attempts_registration_id"), ["registration_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table(t("attempts"), schema=S) as batch_op:
        batch_op.drop_index(t("ix_attempts_registration_id"))
        batch_op.drop_index(t("ix_attempts_delivery_id"))
        batch_op.drop_index(t("ix_attempts_created_at"))

    op.drop_table(t("attempts"), schema=S)
    with op.batch_alter_table(t("registration_topics"), schema=S) as batch_op:
        batch_op.drop_index(t("ix_registration_topics_org_topic"))

    op.drop_table(t("registration_topics"), schema=S)
    with op.batch_alter_table(t("deliveries"), schema=S) as batch_op:
        batch_op.drop_index(t("ix_deliveries_registration_key"))
        batch_op.drop_index(t("ix_deliveries_org"))
        batch_op.drop_index(t("ix_deliveries_next"))
        batch_op.drop_index(t("ix_deliveries_event_id"))

    op.drop_table(t("deliveries"), schema=S)
    with op.batch_alter_table(t("registrations"), schema=S) as batch_op:
        batch_op.drop_index(t("ix_registrations_org_id"))

    op.drop_table(t("registrations"), schema=S)
    with op.batch_alter_table(t("api_keys"), schema=S) as batch_op:
        batch_op.drop_index(t("ix_api_keys_org_id"))

    op.drop_table(t("api_keys"), schema=S)
    op.drop_table(t("orgs"), schema=S)
    with op.batch_alter_table(t("events"), schema=S) as batch_op:
        batch_op.drop_index(t("ix_events_org_created"))

    op.drop_table(t("events"), schema=S)
