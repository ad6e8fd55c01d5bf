"""Recording what attempts came to, in batches: delivery state, the attempt log, and each
registration's health (consecutive failures; disabling one that keeps failing or
answered 410, and telling its org with ``webhook.disabled``, written in the same
transaction: :mod:`hookruntime.store.notices`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import (
    Connection,
    bindparam,
    func,
    literal_column,
    null,
    or_,
    select,
    update,
)

from ..ids import new_rev
from ..operational import registration_summary
from ..store.compiled import Compiled, inserting, updating
from ..store.engine import Database
from ..store.holds import hold
from ..store.models import ATTEMPTS, DELIVERIES, REGISTRATIONS
from ..store.notices import write_notice
from .policy import NextState

__all__ = ["DisablePolicy", "Disabled", "Record", "Written", "write_records"]

log = logging.getLogger("hookruntime.worker")


@dataclass(frozen=True, slots=True)
class Record:
    delivery_id: str
    event_id: str
    registration_id: str
    org_id: str
    topic: str
    number: int
    next_state: NextState
    status_code: int | None
    error: str | None
    latency_ms: float
    response: str | None
    at: float
    #: The lease it was sent under: the delivery's state changes only while its row
    #: still carries this token.
    lease_token: str
    response_headers: str | None = None


class Disabled(NamedTuple):
    """A registration disabled by a batch, and the deliveries of its org's
    ``webhook.disabled`` notice, written with it."""

    org: str
    registration_id: str
    reason: str
    notices: int


class Written(NamedTuple):
    """What a batch came to: the records that moved their delivery on (not those from a
    lost lease, nor those whose delivery is gone), and the registrations it disabled."""

    applied: list[Record]
    disabled: list[Disabled]


@dataclass(frozen=True)
class DisablePolicy:
    """When a registration is disabled for failing: ``failures`` consecutive failed
    attempts spread over at least ``seconds``."""

    failures: int = 50
    seconds: float = 86_400.0


class _Finish(NamedTuple):
    """A delivery's state after an attempt; the last two fields are the row's key."""

    status: str
    attempts: int
    next_at: float | None
    last_status: int | None
    last_error: str | None
    updated_at: float
    delivered_at: float | None
    id: str
    lease_token: str


class _Healthy(NamedTuple):
    id: str


class _Attempt(NamedTuple):
    """One line of the attempt log."""

    org_id: str
    registration_id: str
    delivery_id: str
    event_id: str
    topic: str
    number: int
    outcome: str
    status_code: int | None
    latency_ms: float
    error: str | None
    response: str | None
    response_headers: str | None
    created_at: float


# Every attempt adds a line to the attempt log, and moves its delivery on if it still
# holds the lease: the token is part of the UPDATE's key, at no extra round trip.
_FINISH = updating(DELIVERIES, _Finish, ("id", "lease_token"), {"lease_until": null()})
# A batch that ended on a success: the streak is over. Most batches are of healthy
# registrations, whose row is then left as it is (not rewritten on every batch).
_HEALTHY = Compiled(
    update(REGISTRATIONS)
    .where(
        REGISTRATIONS.c.id == bindparam("b_id"),
        or_(
            REGISTRATIONS.c.consecutive_failures != literal_column("0"),
            REGISTRATIONS.c.failing_since.is_not(None),
        ),
    )
    .values(consecutive_failures=literal_column("0"), failing_since=null()),
    _Healthy,
    "b_",
)
_LOG = inserting(ATTEMPTS, _Attempt)


async def write_records(
    database: Database, records: list[Record], health: DisablePolicy
) -> Written:
    """Write one batch. A record whose delivery is gone (its registration deleted while
    it was in flight) is skipped alone; one from a lost lease is logged, not applied."""
    now = time.time()
    return await database.transaction(lambda conn: _write(conn, records, health, now))


def _write(conn: Connection, records: list[Record], health: DisablePolicy, now: float) -> Written:
    changed = _FINISH.run(
        conn,
        [
            _Finish(
                r.next_state.status,
                r.number,
                r.next_state.next_at,
                r.status_code,
                r.error,
                now,
                now if r.next_state.status == "delivered" else None,
                r.delivery_id,
                r.lease_token,
            )
            for r in records
        ],
    )
    applied = logged = records
    if changed != len(records):
        applied, logged = _sort_out(conn, records)
    _LOG.run(
        conn,
        [
            _Attempt(
                r.org_id,
                r.registration_id,
                r.delivery_id,
                r.event_id,
                r.topic,
                r.number,
                r.next_state.status,
                r.status_code,
                r.latency_ms,
                r.error,
                r.response,
                r.response_headers,
                r.at,
            )
            for r in logged
        ],
    )
    return Written(applied, _health(conn, applied, health, now))


def _sort_out(conn: Connection, records: list[Record]) -> tuple[list[Record], list[Record]]:
    """Which records moved their delivery on, and which can be logged (their delivery
    still exists). Only run when some did not match: the common batch pays nothing."""
    ids = list({r.delivery_id for r in records})
    tokens = dict(
        conn.execute(
            select(DELIVERIES.c.id, DELIVERIES.c.lease_token).where(DELIVERIES.c.id.in_(ids))
        ).all()
    )
    applied, logged = [], []
    for r in records:
        if r.delivery_id not in tokens:
            log.info(
                "delivery %s is gone (its registration deleted?); result dropped", r.delivery_id
            )
            continue
        logged.append(r)
        if tokens[r.delivery_id] == r.lease_token:
            applied.append(r)
        else:
            log.info(
                "result of delivery %s came from a lease since lost; logged, not applied",
                r.delivery_id,
            )
    return applied, logged


def _health(
    conn: Connection, records: list[Record], health: DisablePolicy, now: float
) -> list[Disabled]:
    streaks: dict[str, tuple[int, float | None, bool]] = {}
    gone: dict[str, str] = {}
    for r in records:  # in completion order: a success resets the streak
        failures, since, reset = streaks.get(r.registration_id, (0, None, False))
        if r.next_state.status == "delivered":
            streaks[r.registration_id] = (0, None, True)
        else:
            streaks[r.registration_id] = (failures + 1, since or r.at, reset)
        if r.next_state.disable:
            gone[r.registration_id] = r.next_state.reason or "receiver answered 410 Gone"
    healthy: list[_Healthy] = []
    for registration_id, (failures, since, reset) in streaks.items():
        values: dict[str, object]
        if reset and failures == 0:
            healthy.append(_Healthy(registration_id))
            continue
        if reset:
            values = {"consecutive_failures": failures, "failing_since": since}
        else:
            values = {
                "consecutive_failures": REGISTRATIONS.c.consecutive_failures + failures,
                "failing_since": func.coalesce(REGISTRATIONS.c.failing_since, since),
            }
        conn.execute(
            update(REGISTRATIONS).where(REGISTRATIONS.c.id == registration_id).values(values)
        )
    _HEALTHY.run(conn, healthy)
    failed = [rid for rid, (failures, _, _) in streaks.items() if failures]
    failing = (
        conn.execute(
            select(REGISTRATIONS.c.id).where(
                REGISTRATIONS.c.id.in_(failed),
                REGISTRATIONS.c.active.is_(True),
                REGISTRATIONS.c.consecutive_failures >= health.failures,
                REGISTRATIONS.c.failing_since <= now - health.seconds,
            )
        )
        .scalars()
        .all()
        if failed
        else []
    )
    for registration_id in failing:
        gone.setdefault(
            registration_id,
            f"failed {health.failures}+ times in a row for {health.seconds:g}+ seconds",
        )
    disabled = [_disable(conn, rid, reason, now) for rid, reason in gone.items()]
    return [entry for entry in disabled if entry is not None]


def _disable(conn: Connection, registration_id: str, reason: str, now: float) -> Disabled | None:
    row = (
        conn.execute(select(REGISTRATIONS).where(REGISTRATIONS.c.id == registration_id))
        .mappings()
        .one_or_none()
    )
    if row is None or not row["active"]:
        return None
    conn.execute(
        update(REGISTRATIONS)
        .where(REGISTRATIONS.c.id == registration_id)
        .values(active=False, disabled_reason=reason[:500], rev=new_rev(row["rev"]), updated_at=now)
    )
    conn.execute(hold(registration_id))
    summary = registration_summary(row["id"], row["url"], list(row["topics"]), False, now, reason)
    org = row["org_id"]
    return Disabled(
        org, registration_id, reason, write_notice(conn, org, "webhook.disabled", summary, now)
    )
