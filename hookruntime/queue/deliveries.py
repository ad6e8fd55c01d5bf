"""``runtime.deliveries``: list and inspect deliveries, retry (replay) one or many, prune.

A retry starts the delivery over: due at once, with the whole retry schedule ahead.
Delivered deliveries may be replayed too; one in flight may not.
"""

from __future__ import annotations

import builtins
import math
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Connection, Select, delete, exists, select, update

from ..arguments import check_ids
from ..errors import ConflictError, FieldError, NotFoundError, ValidationError
from ..store.cascade import attempts_of, lock_deliveries
from ..store.engine import Database
from ..store.models import ATTEMPTS, DELIVERIES, EVENTS, REGISTRATION_TOPICS
from .wake import Wakeup

__all__ = ["RETRYABLE", "STATUSES", "AttemptView", "Deliveries", "DeliveryView"]

STATUSES = ("pending", "delivering", "delivered", "failed", "dead")
RETRYABLE = ("failed", "dead", "delivered")
_CHUNK = 500


@dataclass(frozen=True)
class AttemptView:
    number: int
    outcome: str
    status_code: int | None
    latency_ms: float
    error: str | None
    response: str | None
    created_at: float


@dataclass(frozen=True)
class DeliveryView:
    id: str
    event_id: str
    registration_id: str
    org: str
    topic: str
    key: str | None
    status: str
    attempts: int
    next_at: float | None
    last_status: int | None
    last_error: str | None
    created_at: float
    updated_at: float
    delivered_at: float | None
    attempt_log: tuple[AttemptView, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["attempt_log"] = [asdict(a) for a in self.attempt_log]
        return data


def _read(conn: Connection, delivery_id: str, org: str) -> DeliveryView:
    row = (
        conn.execute(
            select(DELIVERIES).where(DELIVERIES.c.id == delivery_id, DELIVERIES.c.org_id == org)
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFoundError(f"no delivery {delivery_id!r} in org {org!r}")
    log = conn.execute(
        select(ATTEMPTS).where(ATTEMPTS.c.delivery_id == delivery_id).order_by(ATTEMPTS.c.id)
    ).mappings()
    attempts = tuple(
        AttemptView(
            a["number"],
            a["outcome"],
            a["status_code"],
            a["latency_ms"],
            a["error"],
            a["response"],
            a["created_at"],
        )
        for a in log
    )
    return _view(row, attempts)


def _view(row: Mapping[Any, Any], log: tuple[AttemptView, ...] = ()) -> DeliveryView:
    return DeliveryView(
        id=row["id"],
        event_id=row["event_id"],
        registration_id=row["registration_id"],
        org=row["org_id"],
        topic=row["topic"],
        key=row["key"],
        status=row["status"],
        attempts=row["attempts"],
        next_at=row["next_at"],
        last_status=row["last_status"],
        last_error=row["last_error"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        delivered_at=row["delivered_at"],
        attempt_log=log,
    )


class Deliveries:
    def __init__(self, database: Database, wakeup: Wakeup) -> None:
        self._db = database
        self._wakeup = wakeup

    def _filtered(
        self,
        columns: Any,
        org: str,
        status: str | None,
        topic: str | None,
        registration_id: str | None,
        since: float | None,
        until: float | None,
        event_id: str | None = None,
        hidden: Collection[str] = (),
    ) -> Select[Any]:
        check_ids(org, topic=topic, registration_id=registration_id, event_id=event_id)
        errors = []
        if status is not None and status not in STATUSES:
            errors.append(
                FieldError("status", f"unknown status {status!r}; one of {', '.join(STATUSES)}")
            )
        for name, moment in (("since", since), ("until", until)):
            if moment is not None and (
                isinstance(moment, bool)
                or not isinstance(moment, int | float)
                or not math.isfinite(moment)
            ):
                errors.append(FieldError(name, "must be a Unix time in seconds"))
        if errors:
            raise ValidationError(errors)
        query = select(columns).where(DELIVERIES.c.org_id == org)
        for column, value in (
            (DELIVERIES.c.status, status),
            (DELIVERIES.c.topic, topic),
            (DELIVERIES.c.registration_id, registration_id),
            (DELIVERIES.c.event_id, event_id),
        ):
            if value is not None:
                query = query.where(column == value)
        if since is not None:
            query = query.where(DELIVERIES.c.created_at >= since)
        if until is not None:
            query = query.where(DELIVERIES.c.created_at < until)
        if hidden:  # topics the caller's scopes do not cover, and their registrations
            query = query.where(
                DELIVERIES.c.topic.not_in(hidden),
                DELIVERIES.c.registration_id.not_in(
                    select(REGISTRATION_TOPICS.c.registration_id).where(
                        REGISTRATION_TOPICS.c.org_id == org, REGISTRATION_TOPICS.c.topic.in_(hidden)
                    )
                ),
            )
        return query

    async def list(
        self,
        *,
        org: str,
        status: str | None = None,
        topic: str | None = None,
        registration_id: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
        after: str | None = None,
        event_id: str | None = None,
        hidden: Collection[str] = (),
    ) -> builtins.list[DeliveryView]:
        """Deliveries of ``org`` matching every filter given, oldest first; ``after`` (an
        id) continues a page."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise ValidationError.single("limit", "must be a whole number from 1 to 1000")
        check_ids(org, after=after)
        query = self._filtered(
            DELIVERIES, org, status, topic, registration_id, since, until, event_id, hidden
        )
        if after is not None:
            query = query.where(DELIVERIES.c.id > after)
        query = query.order_by(DELIVERIES.c.id).limit(limit)
        async with self._db.connect() as conn:
            return [_view(row) for row in (await conn.execute(query)).mappings()]

    async def get(self, delivery_id: str, *, org: str) -> DeliveryView:
        """One delivery with its attempts."""
        check_ids(org, delivery_id=delivery_id)
        async with self._db.connect() as conn:
            return await conn.run_sync(_read, delivery_id, org)

    async def retry(self, delivery_id: str, *, org: str) -> DeliveryView:
        check_ids(org, delivery_id=delivery_id)

        def restart(conn: Connection) -> DeliveryView:
            status = conn.execute(
                select(DELIVERIES.c.status).where(
                    DELIVERIES.c.id == delivery_id, DELIVERIES.c.org_id == org
                )
            ).scalar()
            if status is None:
                raise NotFoundError(f"no delivery {delivery_id!r} in org {org!r}")
            if status not in RETRYABLE:
                raise ConflictError(
                    f"delivery {delivery_id!r} is {status}; only "
                    f"{', '.join(RETRYABLE)} deliveries can be retried"
                )
            conn.execute(self._restart([delivery_id]))
            # Read back in the same transaction: once woken, a worker may take it at once.
            return _read(conn, delivery_id, org)

        view = await self._db.transaction(restart)
        self._wakeup.notify()
        return view

    async def retry_many(
        self,
        *,
        org: str,
        status: str = "dead",
        topic: str | None = None,
        registration_id: str | None = None,
        since: float | None = None,
        until: float | None = None,
        progress: Callable[[int, int], None] | None = None,
        hidden: Collection[str] = (),
    ) -> int:
        """Retry every delivery matching the filter, in chunks; ``progress(done, total)``
        is called after each chunk. Returns how many were retried."""
        if progress is not None and not callable(progress):
            raise ValidationError.single("progress", "must be a function (done, total)")
        if status not in RETRYABLE:
            raise ValidationError(
                [FieldError("status", f"only {', '.join(RETRYABLE)} deliveries can be retried")]
            )
        query = self._filtered(
            DELIVERIES.c.id, org, status, topic, registration_id, since, until, hidden=hidden
        )
        async with self._db.connect() as conn:
            ids = (await conn.execute(query.order_by(DELIVERIES.c.id))).scalars().all()
        done = 0
        for start in range(0, len(ids), _CHUNK):
            chunk = list(ids[start : start + _CHUNK])
            await self._db.execute(self._restart(chunk).where(DELIVERIES.c.status == status))
            done += len(chunk)
            if progress is not None:
                progress(done, len(ids))
            self._wakeup.notify()
        return done

    @staticmethod
    def _restart(ids: builtins.list[str]) -> Any:
        now = time.time()
        return (
            update(DELIVERIES)
            .where(DELIVERIES.c.id.in_(ids))
            .values(
                status="pending",
                attempts=0,
                next_at=now,
                lease_until=None,
                worker=None,
                delivered_at=None,
                updated_at=now,
            )
        )

    async def event(self, event_id: str, *, org: str) -> dict[str, Any]:
        check_ids(org, event_id=event_id)
        async with self._db.connect() as conn:
            row = (
                (
                    await conn.execute(
                        select(EVENTS).where(EVENTS.c.id == event_id, EVENTS.c.org_id == org)
                    )
                )
                .mappings()
                .first()
            )
        if row is None:
            raise NotFoundError(f"no event {event_id!r} in org {org!r}")
        return dict(row)

    async def prune(self, *, older_than: float, batch: int = 1000) -> int:
        """Delete events older than ``older_than`` seconds whose deliveries were all
        delivered (dead ones stay for replay), with their deliveries and attempts, in
        batches; also the blocking calls' attempts of that age. Returns events deleted."""
        cutoff = time.time() - older_than
        unfinished = exists().where(
            DELIVERIES.c.event_id == EVENTS.c.id, DELIVERIES.c.status != "delivered"
        )
        oldest = select(EVENTS.c.id).where(EVENTS.c.created_at < cutoff, ~unfinished).limit(batch)

        def prune_batch(conn: Connection) -> int:
            ids = conn.execute(oldest).scalars().all()
            if ids:
                theirs = DELIVERIES.c.event_id.in_(ids)
                conn.execute(lock_deliveries(theirs)).all()
                conn.execute(attempts_of(theirs))
                conn.execute(delete(EVENTS).where(EVENTS.c.id.in_(ids)))
            return len(ids)

        total = 0
        while True:
            pruned = await self._db.transaction(prune_batch)
            total += pruned
            if pruned < batch:
                break
        await self._db.execute(
            delete(ATTEMPTS).where(ATTEMPTS.c.delivery_id.is_(None), ATTEMPTS.c.created_at < cutoff)
        )
        return total
