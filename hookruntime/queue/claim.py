"""Claiming due deliveries under a lease: one UPDATE … RETURNING over a subquery that,
on PostgreSQL, locks with ``FOR UPDATE SKIP LOCKED`` so that workers on many hosts
take disjoint batches.

Due: pending or failed with ``next_at`` reached, or delivering with an expired lease
(its worker died). A claimed delivery's ``next_at`` is its lease's end, so the claim's
range scan over ``next_at`` never walks the deliveries in flight. Held: deliveries of
inactive registrations (taken out of that scan, ``next_at`` NULL, until their
registration is active again), and, for ordered registrations, any delivery whose key
has an earlier delivery still open.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import (
    ColumnElement,
    Connection,
    Float,
    Integer,
    String,
    Update,
    any_,
    bindparam,
    case,
    exists,
    func,
    literal_column,
    or_,
    select,
    update,
)

from ..store.compiled import Query
from ..store.engine import Database
from ..store.models import DELIVERIES, EVENTS, REGISTRATIONS

__all__ = ["OPEN", "Claimed", "claim", "new_lease_token", "release"]

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
    #: This claim's own mark on the row: its result is written only while the row
    #: still carries it (not once another worker has claimed the delivery again).
    lease_token: str


def _statuses(column: ColumnElement[str], statuses: tuple[str, ...]) -> ColumnElement[bool]:
    # Written into the SQL, not bound: the statement then has only named parameters.
    return column.in_([literal_column(f"'{status}'") for status in statuses])


def _claim_statement(postgresql: bool, excluded: int) -> Update:
    d = DELIVERIES.alias("d")
    earlier = DELIVERIES.alias("earlier")
    now = bindparam("now", type_=Float)
    blocked = (
        exists()
        .where(
            earlier.c.registration_id == d.c.registration_id,
            earlier.c.key == d.c.key,
            earlier.c.id < d.c.id,
            _statuses(earlier.c.status, OPEN),
        )
        .correlate(d)
    )
    # The registration is checked per row by a scalar subquery, which PostgreSQL keeps as
    # one (a join or an EXISTS it turns into a join). Joined, its planner could start
    # from the registrations and sort all their due deliveries to take the first 256:
    # 16 ms for a 20,000 backlog on fresh statistics, growing with the backlog. This way
    # it can only walk ix_deliveries_next in order and stop at the limit (~1 ms).
    sendable = (
        select(REGISTRATIONS.c.id)
        .where(
            REGISTRATIONS.c.id == d.c.registration_id,
            REGISTRATIONS.c.active.is_(True),
            or_(REGISTRATIONS.c.ordered.is_(False), d.c.key.is_(None), ~blocked),
        )
        .correlate(d)
        .scalar_subquery()
        .is_not(None)
    )
    due = (
        select(d.c.id)
        .where(
            # next_at is set exactly while a delivery is open, and a delivering one's is
            # its lease's end: this alone is "due, or its worker's lease ran out". The
            # status test is a guard, written as what PostgreSQL estimates close to the
            # truth without statistics (a fresh table): an IN list of the open statuses
            # it would guess matched 1 % of rows, and plan for that.
            d.c.next_at <= now,
            d.c.status.not_in([literal_column("'delivered'"), literal_column("'dead'")]),
            sendable,
        )
        .order_by(d.c.next_at)
        .limit(bindparam("limit", type_=Integer))
    )
    if excluded:
        due = due.where(
            d.c.registration_id.not_in([bindparam(f"x{i}", type_=String) for i in range(excluded)])
        )
    claimed: ColumnElement[bool]
    if postgresql:
        due = due.with_for_update(skip_locked=True, of=d)
        # The ids as one array, and the rows found by primary key from it. Given
        # ``id IN (subquery)`` the planner may hash-join the subquery's rows against a
        # sequential scan of the whole table (it did, on 20,000 rows with statistics or
        # without), so each claim's cost grew with every delivered row kept.
        claimed = DELIVERIES.c.id == any_(func.array(due.scalar_subquery()))
    else:
        claimed = DELIVERIES.c.id.in_(due)
    # The payload comes back with the claim: one statement, no second query.
    payload = select(EVENTS.c.payload).where(EVENTS.c.id == DELIVERIES.c.event_id)
    return (
        update(DELIVERIES)
        .where(claimed)
        .values(
            status=literal_column("'delivering'"),
            lease_until=bindparam("lease_until", type_=Float),
            next_at=bindparam("lease_until", type_=Float),
            worker=bindparam("worker", type_=String),
            lease_token=bindparam("token", type_=String),
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


# Built and compiled once per dialect and size of the exclusion list (rounded up to a
# power of two; the list is padded with its own first id).
_CLAIMS: dict[tuple[bool, int], Query] = {}


def _claim_query(postgresql: bool, excluded: int) -> Query:
    key = (postgresql, excluded)
    found = _CLAIMS.get(key)
    if found is None:
        found = _CLAIMS[key] = Query(_claim_statement(postgresql, excluded))
    return found


async def claim(
    database: Database,
    worker: str,
    limit: int,
    now: float,
    lease: float,
    exclude: Collection[str] = (),
) -> list[Claimed]:
    excluded = list(exclude)
    size = 1 << (len(excluded) - 1).bit_length() if excluded else 0
    query = _claim_query(database.dialect == "postgresql", size)
    held = now + lease
    token = new_lease_token()
    values: dict[str, object] = {
        "now": now,
        "limit": limit,
        "lease_until": held,
        "worker": worker,
        "token": token,
    }
    for index in range(size):
        values[f"x{index}"] = excluded[index] if index < len(excluded) else excluded[0]

    def run(conn: Connection) -> list[Claimed]:
        return [
            Claimed(row[0], row[1], row[2], row[3], row[4], row[5], row[6], held, token)
            for row in query.rows(conn, values)
        ]

    return await database.transaction(run)


def new_lease_token() -> str:
    """A mark for one claim (or one hand-off from the outbox), unique among them."""
    return secrets.token_hex(8)


async def release(database: Database, items: Collection[Claimed], now: float) -> None:
    """Give claimed deliveries back, due at once (a worker shutting down); only those
    still under the lease they were claimed with, not another worker's since."""
    if not items:
        return
    statement = (
        update(DELIVERIES)
        .where(
            DELIVERIES.c.id.in_([item.id for item in items]),
            DELIVERIES.c.lease_token.in_({item.lease_token for item in items}),
            DELIVERIES.c.status == "delivering",
        )
        .values(
            status=case((DELIVERIES.c.attempts > 0, "failed"), else_="pending"),
            lease_until=None,
            worker=None,
            next_at=now,
            updated_at=now,
        )
    )
    await database.execute(statement)
