"""The tables, declared as SQLModel classes. Every statement, control plane and hot paths
alike, goes through their Core tables (``REGISTRATIONS``, ``DELIVERIES``, …): no code
loads a row as an object of these classes.

Each class is named for the row it defines (``RegistrationRow``): the values the rest of
the package reads from the rows have names of their own (:class:`hookruntime.Registration`,
``ApiKeyInfo``, ``DeliveryView``).

Times are UTC seconds since the epoch as floats: one representation on SQLite and
PostgreSQL, cheap to compare in the claim query.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Column, ForeignKey, Index, Table, Text, text
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from .namespace import NAMESPACE

__all__ = [
    "API_KEYS",
    "ATTEMPTS",
    "DELIVERIES",
    "EVENTS",
    "ORGS",
    "REGISTRATIONS",
    "REGISTRATION_TOPICS",
    "WORKERS",
    "ApiKeyRow",
    "AttemptRow",
    "DeliveryRow",
    "EventRow",
    "OrgRow",
    "RegistrationRow",
    "RegistrationTopicRow",
    "WorkerRow",
    "metadata",
]


class Stored(SQLModel, registry=registry()):
    """hookruntime's tables keep a registry and MetaData of their own: a host's
    ``SQLModel.metadata`` (and the Alembic autogenerate run over it) never holds them."""


metadata = Stored.metadata

# Every name below goes through these: hookruntime's tables, indexes and constraints live
# in a namespace of their own in a database shared with a host (see .namespace).
_name = NAMESPACE.name
_ref = NAMESPACE.ref
_SCHEMA = {"schema": NAMESPACE.schema}

#: The rows of ix_deliveries_next: deliveries not yet finished (nor held).
OPEN_DELIVERY = text("next_at IS NOT NULL")


class OrgRow(Stored, table=True):
    __tablename__ = _name("orgs")
    __table_args__ = _SCHEMA

    id: str = Field(primary_key=True, max_length=64)
    created_at: float


class ApiKeyRow(Stored, table=True):
    """An API key, stored as the SHA-256 of the whole key; ``prefix`` is public and
    finds the row without scanning."""

    __tablename__ = _name("api_keys")
    __table_args__ = (Index(_name("ix_api_keys_org_id"), "org_id"), _SCHEMA)

    id: str = Field(primary_key=True, max_length=40)
    org_id: str = Field(foreign_key=_ref("orgs.id"), max_length=64)
    prefix: str = Field(unique=True, max_length=32)
    hash: str = Field(max_length=64)
    scopes: list[str] = Field(sa_column=Column(JSON, nullable=False))
    name: str | None = Field(default=None, max_length=200)
    created_at: float
    revoked_at: float | None = None


class RegistrationRow(Stored, table=True):
    """An org's subscription. ``secret``, ``previous_secret`` and ``headers`` hold
    ciphertext (see :mod:`hookruntime.store.crypto`)."""

    __tablename__ = _name("registrations")
    __table_args__ = (Index(_name("ix_registrations_org_id"), "org_id"), _SCHEMA)

    id: str = Field(primary_key=True, max_length=40)
    org_id: str = Field(foreign_key=_ref("orgs.id"), max_length=64)
    rev: str = Field(max_length=40)
    url: str = Field(max_length=2048)
    topics: list[str] = Field(sa_column=Column(JSON, nullable=False))
    profile: str = Field(max_length=32)
    secret: str = Field(sa_column=Column(Text, nullable=False))
    previous_secret: str | None = Field(default=None, sa_column=Column(Text))
    previous_secret_until: float | None = None
    headers: str | None = Field(default=None, sa_column=Column(Text))
    integration_id: str = Field(max_length=36)
    priority: int = 0
    on_failure: str | None = Field(default=None, max_length=8)
    timeout: float | None = None
    ordered: bool = False
    retry_schedule: list[float] | None = Field(default=None, sa_column=Column(JSON))
    max_attempts: int | None = None
    signed_responses: bool = False
    active: bool = True
    disabled_reason: str | None = Field(default=None, max_length=500)
    consecutive_failures: int = 0
    failing_since: float | None = None
    description: str | None = Field(default=None, max_length=500)
    created_at: float
    updated_at: float


class RegistrationTopicRow(Stored, table=True):
    """One row per (registration, topic): the index that finds who receives a topic."""

    __tablename__ = _name("registration_topics")
    __table_args__ = (Index(_name("ix_registration_topics_org_topic"), "org_id", "topic"), _SCHEMA)

    registration_id: str = Field(
        sa_column=Column(ForeignKey(_ref("registrations.id"), ondelete="CASCADE"), primary_key=True)
    )
    topic: str = Field(primary_key=True, max_length=128)
    org_id: str = Field(max_length=64)


class EventRow(Stored, table=True):
    """No index over ``(org_id, created_at)``: no query lists an org's events, and
    pruning by age alone could not use one."""

    __tablename__ = _name("events")
    __table_args__: Any = (
        # Only events emitted with a key are in it: the others, nearly all, add no entry.
        Index(
            _name("uq_events_org_idempotency_key"),
            "org_id",
            "idempotency_key",
            unique=True,
            sqlite_where=text("idempotency_key IS NOT NULL"),
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
        _SCHEMA,
    )

    id: str = Field(primary_key=True, max_length=40)
    org_id: str = Field(max_length=64)
    topic: str = Field(max_length=128)
    key: str | None = Field(default=None, max_length=200)
    payload: str = Field(sa_column=Column(Text, nullable=False))
    idempotency_key: str | None = Field(default=None, max_length=200)
    request_hash: str | None = Field(default=None, max_length=64)
    created_at: float
    #: W3C trace context of the span that emitted the event (OpenTelemetry on only).
    traceparent: str | None = Field(default=None, max_length=55)


class DeliveryRow(Stored, table=True):
    """Event x registration: the unit of retry state."""

    __tablename__ = _name("deliveries")
    __table_args__: Any = (
        # Only open deliveries (next_at set) are in it: the claim's range scan meets
        # only them, in due order, and the result that finishes one (next_at NULL)
        # writes no entry here. registration_id beside it: a claim passing over
        # registrations at their cap filters them from the index, without reading
        # each of their rows.
        Index(
            _name("ix_deliveries_next"),
            "next_at",
            "registration_id",
            sqlite_where=OPEN_DELIVERY,
            postgresql_where=OPEN_DELIVERY,
        ),
        # No index holds status: it changes on every attempt, and each index holding
        # it would be rewritten with it.
        Index(_name("ix_deliveries_org"), "org_id", "created_at"),
        Index(_name("ix_deliveries_registration_key"), "registration_id", "key"),
        Index(_name("ix_deliveries_event_id"), "event_id"),
        _SCHEMA,
    )

    id: str = Field(primary_key=True, max_length=40)
    event_id: str = Field(
        sa_column=Column(ForeignKey(_ref("events.id"), ondelete="CASCADE"), nullable=False)
    )
    registration_id: str = Field(
        sa_column=Column(ForeignKey(_ref("registrations.id"), ondelete="CASCADE"), nullable=False)
    )
    org_id: str = Field(max_length=64)
    topic: str = Field(max_length=128)
    key: str | None = Field(default=None, max_length=200)
    status: str = Field(max_length=16)
    attempts: int = 0
    next_at: float | None = None
    lease_until: float | None = None
    worker: str | None = Field(default=None, max_length=64)
    #: Set afresh by every claim; a result is written only under the token it was
    #: claimed with, so one from a lease since lost changes nothing.
    lease_token: str | None = Field(default=None, max_length=32)
    last_status: int | None = None
    last_error: str | None = Field(default=None, max_length=1000)
    created_at: float
    updated_at: float
    delivered_at: float | None = None


class AttemptRow(Stored, table=True):
    """One HTTP try, of a delivery (``delivery_id``) or of a blocking call (``call_id``)."""

    __tablename__ = _name("attempts")
    __table_args__: Any = (
        # Only blocking calls' attempts are pruned by age (a delivery's go with it), and
        # only they are in this index: each delivery attempt writes one index fewer.
        Index(
            _name("ix_attempts_calls_created"),
            "created_at",
            sqlite_where=text("delivery_id IS NULL"),
            postgresql_where=text("delivery_id IS NULL"),
        ),
        Index(_name("ix_attempts_delivery_id"), "delivery_id"),
        _SCHEMA,
    )

    id: int | None = Field(default=None, primary_key=True)
    org_id: str = Field(max_length=64)
    registration_id: str = Field(max_length=40)
    #: No foreign key: its check cost every recorded attempt a lookup and a lock on the
    #: delivery's row. Attempts are deleted with their delivery by hand (store.cascade).
    delivery_id: str | None = Field(default=None, max_length=40)
    call_id: str | None = Field(default=None, max_length=40)
    event_id: str | None = Field(default=None, max_length=40)
    topic: str = Field(max_length=128)
    number: int = 1
    outcome: str = Field(max_length=16)
    status_code: int | None = None
    latency_ms: float = 0.0
    error: str | None = Field(default=None, max_length=1000)
    response: str | None = Field(default=None, sa_column=Column(Text))
    #: A delivery attempt's response headers: a bounded, redacted JSON excerpt.
    response_headers: str | None = Field(default=None, sa_column=Column(Text))
    #: On one attempt row of a blocking call: the merged decision, the patch conflicts
    #: and the deadline the call ran under, as JSON.
    call_detail: str | None = Field(default=None, sa_column=Column(Text))
    created_at: float


class WorkerRow(Stored, table=True):
    """A delivery worker that is alive, or was: deliveries leased to one whose heartbeat
    has stopped are taken back without waiting for their leases."""

    __tablename__ = _name("workers")
    __table_args__ = _SCHEMA

    id: str = Field(primary_key=True, max_length=64)
    host: str = Field(max_length=255)
    pid: int
    started_at: float
    heartbeat_at: float


def _table(model: type[SQLModel]) -> Table:
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return table


# The Core tables, for statements that skip the ORM.
ORGS = _table(OrgRow)
API_KEYS = _table(ApiKeyRow)
REGISTRATIONS = _table(RegistrationRow)
REGISTRATION_TOPICS = _table(RegistrationTopicRow)
EVENTS = _table(EventRow)
DELIVERIES = _table(DeliveryRow)
ATTEMPTS = _table(AttemptRow)
WORKERS = _table(WorkerRow)
