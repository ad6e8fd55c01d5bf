"""One event's rows: the event, and one delivery per active registration of its org
subscribed to its topic, written through a connection already in a transaction.

The outbox writes every emitted event through :func:`fan_out`, and so do the runtime's
own notices (:mod:`hookruntime.store.notices`): one way rows of an event come to be.
Deliveries are written ``pending`` for a claim, or, given an :class:`Owner`, as many as
it has room for already claimed by it (never those of ordered registrations, which go
through the claim to keep their order). On PostgreSQL a transaction that leaves
deliveries pending sends ``NOTIFY`` on :data:`CHANNEL`, which wakes the listening
workers when it commits.
"""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import select

from ..ids import new_id
from .models import DELIVERIES, EVENTS, REGISTRATION_TOPICS, REGISTRATIONS
from .writing import Writer, inserting

__all__ = ["CHANNEL", "NewDelivery", "NewEvent", "Owner", "fan_out"]

#: The PostgreSQL channel that tells workers deliveries are waiting.
CHANNEL = "hookruntime_deliveries"


class NewEvent(NamedTuple):
    id: str
    org_id: str
    topic: str
    key: str | None
    payload: str
    idempotency_key: str | None
    request_hash: str | None
    created_at: float
    traceparent: str | None


class NewDelivery(NamedTuple):
    id: str
    event_id: str
    registration_id: str
    org_id: str
    topic: str
    key: str | None
    status: str
    attempts: int
    next_at: float
    lease_until: float | None
    worker: str | None
    lease_token: str | None
    created_at: float
    updated_at: float


class Owner(NamedTuple):
    """A worker that takes up to ``room`` new deliveries as written, claimed by it."""

    worker: str
    lease_until: float
    lease_token: str
    room: int


_EVENTS = inserting(EVENTS, NewEvent)
_DELIVERIES = inserting(DELIVERIES, NewDelivery)


def fan_out(
    writer: Writer,
    org: str,
    topic: str,
    events: list[NewEvent],
    now: float,
    *,
    postgresql: bool,
    only: str | None = None,
    owner: Owner | None = None,
    events_written: bool = False,
) -> tuple[int, list[tuple[NewDelivery, NewEvent]]]:
    """Write ``events`` and their deliveries; return the number of deliveries per event
    and those written claimed by ``owner``, each with its event. ``only`` limits the
    deliveries to one registration; ``events_written``: the event rows are in already
    (an idempotent event, inserted unless its key was taken)."""
    # The write comes first: in a host's SQLite transaction that has not written yet,
    # a read first would make the write an upgrade, which fails at once when another
    # connection holds the lock instead of waiting for it.
    if not events_written:
        writer.insert(_EVENTS, events)
    query = select(REGISTRATIONS.c.id, REGISTRATIONS.c.ordered)
    if only is not None:
        query = query.where(REGISTRATIONS.c.id == only)
    receivers = writer.rows(
        query.join(REGISTRATION_TOPICS, REGISTRATION_TOPICS.c.registration_id == REGISTRATIONS.c.id)
        .where(
            REGISTRATION_TOPICS.c.org_id == org,
            REGISTRATION_TOPICS.c.topic == topic,
            REGISTRATIONS.c.active.is_(True),
        )
        .order_by(REGISTRATIONS.c.id)
    )
    if not receivers:
        return 0, []
    rows: list[NewDelivery] = []
    direct: list[tuple[NewDelivery, NewEvent]] = []
    for e in events:
        for rid, ordered in receivers:
            if owner is not None and len(direct) < owner.room and not ordered:
                until = owner.lease_until
                row = NewDelivery(
                    new_id("dlv"), e.id, rid, org, topic, e.key, "delivering", 0, until,
                    until, owner.worker, owner.lease_token, now, now,
                )  # fmt: skip
                direct.append((row, e))
            else:
                row = NewDelivery(
                    new_id("dlv"), e.id, rid, org, topic, e.key, "pending", 0, now,
                    None, None, None, now, now,
                )  # fmt: skip
            rows.append(row)
    writer.insert(_DELIVERIES, rows)
    if postgresql and len(direct) < len(rows):
        writer.execute(f"NOTIFY {CHANNEL}")
    return len(receivers), direct
