"""Claiming due deliveries under a lease: one UPDATE … RETURNING over a subquery that,
on PostgreSQL, locks with ``FOR UPDATE SKIP LOCKED`` so that workers on many hosts
take disjoint batches.

Due: pending or failed with ``next_at`` reached, or delivering with an expired lease
(its worker died). Held: deliveries of inactive registrations, and, for ordered
registrations, any delivery whose key has an earlier delivery still open.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import (
    Connection,
    Float,
    Integer,
    String,
    Update,
    and_,
    bindparam,
    case,
    exists,
    or_,
    select,
    update,
)

from ..store.engine import Database
from ..store.models import DELIVERIES, EVENTS, REGISTRATIONS

__all__ = ["OPEN", "Claimed", "claim", "release"]

#: Statuses of a delivery not yet finished.
OPEN = ("pending", "failed", "delivering")


@dataclass(frozen=True, slots=True)
class Claimed:
    id: str
    event_id: str
    registration_id: str
    org_id: str
    topic: str
    attempts: int
    payload: str
    #: Until when this worker holds it; sent later, it might be another's by then.
    lease_until: float


def _claim_statement(postgresql: bool, excluding: bool) -> Update:
    d = DELIVERIES.alias("d")
    earlier = DELIVERIES.alias("earlier")
    now = bindparam("now", type_=Float)
    blocked = exists().where(
        earlier.c.registration_id == d.c.registration_id,
        earlier.c.key == d.c.key,
        earlier.c.id < d.c.id,
        earlier.c.status.in_(OPEN),
    )
    due = (
        select(d.c.id)
        .join(REGISTRATIONS, REGISTRATIONS.c.id == d.c.registration_id)
        .where(
            d.c.next_at <= now,
            REGISTRATIONS.c.active.is_(True),
            or_(
                d.c.status.in_(("pending", "failed")),
                and_(d.c.status == "delivering", d.c.lease_until < now),
            ),
            or_(REGISTRATIONS.c.ordered.is_(False), d.c.key.is_(None), ~blocked),
        )
        .order_by(d.c.next_at)
        .limit(bindparam("limit", type_=Integer))
    )
    if excluding:
        due = due.where(d.c.registration_id.not_in(bindparam("exclude", expanding=True)))
    if postgresql:
        due = due.with_for_update(skip_locked=True, of=d)
    # The payload comes back with the claim: one statement, no second query.
    payload = select(EVENTS.c.payload).where(EVENTS.c.id == DELIVERIES.c.event_id)
    return (
        update(DELIVERIES)
        .where(DELIVERIES.c.id.in_(due))
        .values(
            status="delivering",
            lease_until=bindparam("lease_until", type_=Float),
            worker=bindparam("worker", type_=String),
            updated_at=now,
        )
        .returning(
            DELIVERIES.c.id,
            DELIVERIES.c.event_id,
            DELIVERIES.c.registration_id,
            DELIVERIES.c.org_id,
            DELIVERIES.c.topic,
            DELIVERIES.c.attempts,
            payload.scalar_subquery(),
        )
    )


# Built once: constructing this statement (aliases, subqueries) cost more than running it.
_CLAIMS = {(pg, ex): _claim_statement(pg, ex) for pg in (False, True) for ex in (False, True)}


async def claim(
    database: Database,
    worker: str,
    limit: int,
    now: float,
    lease: float,
    exclude: Collection[str] = (),
) -> list[Claimed]:
    statement = _CLAIMS[database.dialect == "postgresql", bool(exclude)]
    values: dict[str, object] = {
        "now": now,
        "limit": limit,
        "lease_until": now + lease,
        "worker": worker,
    }
    if exclude:
        values["exclude"] = list(exclude)

    def run(conn: Connection) -> list[Claimed]:
        held = now + lease
        return [
            Claimed(row[0], row[1], row[2], row[3], row[4], row[5], row[6], held)
            for row in conn.execute(statement, values)
        ]

    return await database.transaction(run)


async def release(database: Database, ids: Collection[str], now: float) -> None:
    """Give claimed deliveries back, due at once (a worker shutting down)."""
    if not ids:
        return
    statement = (
        update(DELIVERIES)
        .where(DELIVERIES.c.id.in_(list(ids)), DELIVERIES.c.status == "delivering")
        .values(
            status=case((DELIVERIES.c.attempts > 0, "failed"), else_="pending"),
            lease_until=None,
            worker=None,
            next_at=now,
            updated_at=now,
        )
    )
    await database.execute(statement)
