"""The overview's numbers: outcomes, success rate and latency per topic and per
registration over a window, queue depth, the oldest due delivery, and a time series.

Every read is a range over an index scoped by org (``ix_deliveries_org`` for the
window, ``ix_attempts_delivery_id`` for latencies, ``ix_deliveries_next`` for the
queue), capped at SAMPLE rows, so a busy day costs a bounded read, never a full scan.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import func, select, true

from ..runtime import HookRuntime
from ..store.models import ATTEMPTS, DELIVERIES
from .queries import COUNT_CAP

__all__ = ["WINDOWS", "Bucket", "Line", "Overview", "collect"]

#: Window name → (seconds, buckets of the chart).
WINDOWS = {"hour": (3600.0, 12), "day": (86400.0, 24)}
SAMPLE = 20_000


def quantile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


@dataclass
class Line:
    """Outcomes of one topic or one registration in the window."""

    name: str
    delivered: int = 0
    failed: int = 0
    dead: int = 0
    waiting: int = 0
    latencies: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float | None:
        ended = self.delivered + self.failed + self.dead
        return None if ended == 0 else self.delivered / ended

    @property
    def p50(self) -> float | None:
        return quantile(self.latencies, 0.5)

    @property
    def p95(self) -> float | None:
        return quantile(self.latencies, 0.95)

    def add(self, status: str) -> None:
        if status in ("delivered", "failed", "dead"):
            setattr(self, status, getattr(self, status) + 1)
        else:
            self.waiting += 1


@dataclass(frozen=True)
class Bucket:
    start: float
    delivered: int
    failing: int


@dataclass
class Overview:
    window: str
    since: float
    total: Line
    topics: list[Line]
    registrations: list[Line]
    buckets: list[Bucket]
    sampled: bool
    #: With ``sampled``: the creation time of the oldest delivery counted.
    counted_since: float
    queue_depth: int
    oldest_due_age: float | None


async def collect(
    runtime: HookRuntime, org: str, window: str, hidden: frozenset[str] = frozenset()
) -> Overview:
    seconds, count = WINDOWS[window]
    now = time.time()
    since = now - seconds
    visible = DELIVERIES.c.topic.not_in(sorted(hidden)) if hidden else true()
    recent = (
        select(
            DELIVERIES.c.id,
            DELIVERIES.c.topic,
            DELIVERIES.c.registration_id,
            DELIVERIES.c.status,
            DELIVERIES.c.created_at,
        )
        .where(DELIVERIES.c.org_id == org, DELIVERIES.c.created_at >= since, visible)
        .order_by(DELIVERIES.c.created_at.desc())
        .limit(SAMPLE)
    )
    latencies = (
        select(ATTEMPTS.c.latency_ms, DELIVERIES.c.topic, DELIVERIES.c.registration_id)
        .join(DELIVERIES, DELIVERIES.c.id == ATTEMPTS.c.delivery_id)
        .where(DELIVERIES.c.org_id == org, DELIVERIES.c.created_at >= since, visible)
        .limit(SAMPLE)
    )
    # A range, not IS NOT NULL, so that SQLite reads ix_deliveries_next for it too.
    unfinished = DELIVERIES.c.next_at >= 0
    # Wrapped so that no planner walks the org's whole history over ix_deliveries_org:
    # the unfinished deliveries, over ix_deliveries_next, are the few.
    of_org = func.coalesce(DELIVERIES.c.org_id, "") == org
    depth = (
        select(DELIVERIES.c.id).where(unfinished, of_org, visible).limit(COUNT_CAP + 1).subquery()
    )
    oldest = (
        select(DELIVERIES.c.next_at)
        .where(unfinished, DELIVERIES.c.next_at <= now, of_org, visible)
        .order_by(DELIVERIES.c.next_at)
        .limit(1)
    )
    async with runtime.database.engine.connect() as conn:
        rows = [tuple(r) for r in await conn.execute(recent)]
        timed = (await conn.execute(latencies)).all()
        queue_depth = int(
            (await conn.execute(select(func.count()).select_from(depth))).scalar_one()
        )
        due = (await conn.execute(oldest)).scalar()

    total = Line("all")
    by_topic: dict[str, Line] = defaultdict(lambda: Line(""))
    by_registration: dict[str, Line] = defaultdict(lambda: Line(""))
    width = seconds / count
    delivered = [0] * count
    failing = [0] * count
    for _id, topic, registration_id, status, created_at in rows:
        for line, name in (
            (total, "all"),
            (by_topic[topic], topic),
            (by_registration[registration_id], registration_id),
        ):
            line.name = name
            line.add(status)
        slot = min(count - 1, max(0, int((created_at - since) / width)))
        if status == "delivered":
            delivered[slot] += 1
        elif status in ("failed", "dead"):
            failing[slot] += 1
    for latency, topic, registration_id in timed:
        total.latencies.append(latency)
        by_topic[topic].latencies.append(latency)
        by_registration[registration_id].latencies.append(latency)
    return Overview(
        window=window,
        since=since,
        total=total,
        topics=sorted(by_topic.values(), key=lambda line: line.name),
        registrations=sorted(by_registration.values(), key=lambda line: line.name),
        buckets=[Bucket(since + i * width, delivered[i], failing[i]) for i in range(count)],
        sampled=len(rows) >= SAMPLE,
        counted_since=rows[-1][4] if rows else since,
        queue_depth=queue_depth,
        oldest_due_age=None if due is None else max(0.0, now - due),
    )
