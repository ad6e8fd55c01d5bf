"""Read-only queries of the dashboard, in SQLAlchemy Core over the runtime's tables.

Every list is one indexed, keyset-paginated query scoped by org (newest first over
``ix_deliveries_org``); the counts a page shows are capped, never a COUNT(*) over a whole
table. Only a bulk retry counts every match, as it goes over them all anyway.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, func, select, tuple_

from ..errors import FieldError, ValidationError
from ..queue.deliveries import STATUSES
from ..runtime import HookRuntime
from ..store.models import ATTEMPTS, DELIVERIES, REGISTRATIONS

__all__ = [
    "DeliveryFilter",
    "attempt_headers",
    "capped_count",
    "delivery_page",
    "matching_topics",
    "plausible_id",
    "registration_urls",
]

PAGE = 50
_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
#: Counts stop here: "10,000+" is as useful to a person as the exact number.
COUNT_CAP = 10_000


@dataclass(frozen=True)
class DeliveryFilter:
    status: str | None = None
    topic: str | None = None
    registration_id: str | None = None
    event_id: str | None = None
    since: float | None = None
    until: float | None = None

    @classmethod
    def parse(cls, params: Any) -> DeliveryFilter:
        """From query parameters or form fields; empty values mean no filter."""

        errors = []

        def text(name: str) -> str | None:
            value = (params.get(name) or "").strip()[:200]
            if any(ord(c) < 32 for c in value):  # PostgreSQL refuses NUL in text
                errors.append(FieldError(name, "must not hold control characters"))
                return None
            return value or None

        status = text("status")
        if status is not None and status not in STATUSES:
            errors.append(FieldError("status", f"one of {', '.join(STATUSES)}"))
        moments: dict[str, float | None] = {}
        for name in ("since", "until"):
            raw = text(name)
            moments[name] = None
            if raw is None:
                continue
            moments[name] = _moment(raw)
            if not math.isfinite(moments[name] or 0.0):
                errors.append(FieldError(name, "a date-time (UTC) or Unix seconds"))
        if errors:
            raise ValidationError(errors)
        return cls(status, text("topic"), text("registration_id"), text("event_id"), **moments)

    def params(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if v is not None}

    def where(
        self, query: Select[Any], org: str, hidden: frozenset[str] = frozenset()
    ) -> Select[Any]:
        if self.event_id is None:
            query = query.where(DELIVERIES.c.org_id == org)
        else:  # an event's deliveries are few: find them over their own index, not the org's
            query = query.where(func.coalesce(DELIVERIES.c.org_id, "") == org)
        for column, value in (
            (DELIVERIES.c.status, self.status),
            (DELIVERIES.c.topic, self.topic),
            (DELIVERIES.c.registration_id, self.registration_id),
            (DELIVERIES.c.event_id, self.event_id),
        ):
            if value is not None:
                query = query.where(column == value)
        if hidden:
            query = query.where(DELIVERIES.c.topic.not_in(sorted(hidden)))
        if self.since is not None:
            query = query.where(DELIVERIES.c.created_at >= self.since)
        if self.until is not None:
            query = query.where(DELIVERIES.c.created_at < self.until)
        return query


def _moment(raw: str) -> float:
    """Unix seconds, or an ISO 8601 date-time (a form's datetime-local) read as UTC."""
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return math.nan
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _cursor(raw: str | None) -> tuple[float, str] | None:
    if not raw:
        return None
    moment, _, last_id = raw.partition("~")
    try:
        value = float(moment)
    except ValueError:
        return None
    return (value, last_id) if math.isfinite(value) and plausible_id(last_id) else None


def plausible_id(value: str) -> bool:
    """Could ``value`` be one of our ids? Anything else matches nothing, and is not sent
    to the database (PostgreSQL refuses some bytes outright)."""
    return _ID.fullmatch(value) is not None


async def delivery_page(
    runtime: HookRuntime,
    org: str,
    wanted: DeliveryFilter,
    before: str | None,
    hidden: frozenset[str] = frozenset(),
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of deliveries, newest first, and the cursor of the next page."""
    columns = [
        DELIVERIES.c.id,
        DELIVERIES.c.event_id,
        DELIVERIES.c.registration_id,
        DELIVERIES.c.topic,
        DELIVERIES.c.status,
        DELIVERIES.c.attempts,
        DELIVERIES.c.last_status,
        DELIVERIES.c.last_error,
        DELIVERIES.c.next_at,
        DELIVERIES.c.created_at,
        DELIVERIES.c.updated_at,
    ]
    query = wanted.where(select(*columns), org, hidden)
    cursor = _cursor(before)
    if cursor is not None:
        query = query.where(tuple_(DELIVERIES.c.created_at, DELIVERIES.c.id) < tuple_(*cursor))
    if wanted.event_id is None:
        query = query.order_by(DELIVERIES.c.created_at.desc(), DELIVERIES.c.id.desc())
    # else: one event's few deliveries, found over their own index and sorted here; an
    # ORDER BY would lead the planner down the org's whole history instead.
    query = query.limit(PAGE + 1)
    async with runtime.database.engine.connect() as conn:
        rows = [dict(r) for r in (await conn.execute(query)).mappings()]
    rows.sort(key=lambda r: (r["created_at"], r["id"]), reverse=True)
    following = None
    if len(rows) > PAGE:
        rows = rows[:PAGE]
        following = f"{rows[-1]['created_at']!r}~{rows[-1]['id']}"
    return rows, following


async def capped_count(
    runtime: HookRuntime,
    org: str,
    wanted: DeliveryFilter,
    hidden: frozenset[str] = frozenset(),
    cap: int | None = COUNT_CAP,
) -> int:
    """How many deliveries match, counting at most ``cap`` + 1 (None: all, for a job
    that goes over them all anyway)."""
    inner = wanted.where(select(DELIVERIES.c.id), org, hidden)
    if cap is not None:
        inner = inner.limit(cap + 1)
    async with runtime.database.engine.connect() as conn:
        counted = await conn.execute(select(func.count()).select_from(inner.subquery()))
        return int(counted.scalar_one())


async def matching_topics(
    runtime: HookRuntime, org: str, wanted: DeliveryFilter, hidden: frozenset[str]
) -> list[str]:
    """The visible topics that have deliveries matching ``wanted``."""
    query = wanted.where(select(DELIVERIES.c.topic).distinct(), org, hidden)
    async with runtime.database.engine.connect() as conn:
        return sorted((await conn.execute(query)).scalars())


async def registration_urls(runtime: HookRuntime, org: str, ids: Sequence[str]) -> dict[str, str]:
    if not ids:
        return {}
    query = select(REGISTRATIONS.c.id, REGISTRATIONS.c.url).where(
        REGISTRATIONS.c.org_id == org, REGISTRATIONS.c.id.in_(set(ids))
    )
    async with runtime.database.engine.connect() as conn:
        return {r.id: r.url for r in await conn.execute(query)}


async def attempt_headers(
    runtime: HookRuntime, org: str, delivery_id: str
) -> list[list[tuple[str, str]] | None]:
    """The response headers kept of each attempt of a delivery, in attempt order (as its
    ``attempt_log``); None for an attempt that kept none."""
    query = (
        select(ATTEMPTS.c.response_headers)
        .where(ATTEMPTS.c.delivery_id == delivery_id, ATTEMPTS.c.org_id == org)
        .order_by(ATTEMPTS.c.id)
    )
    async with runtime.database.engine.connect() as conn:
        kept = (await conn.execute(query)).scalars().all()
    return [_pairs(raw) for raw in kept]


def _pairs(raw: str | None) -> list[tuple[str, str]] | None:
    try:
        value = json.loads(raw) if raw else None
    except ValueError:
        return None
    if not isinstance(value, list):
        return None
    return [(str(p[0]), str(p[1])) for p in value if isinstance(p, list) and len(p) == 2]
