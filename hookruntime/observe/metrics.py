"""Prometheus metrics of one runtime, in a registry of its own (a process may open many).

Counters and histograms move once per result batch (the worker writes results in
batches) and once per blocking call, never per request inside the HTTP client. Queue
depth, the oldest due delivery's age, disabled registrations, in-flight deliveries and
breaker states are read when scraped: the database part through three counts in one
connection (the two over deliveries read ``ix_deliveries_next`` only), cached for
``cache`` seconds, so a scrape costs the hot path nothing.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import accumulate
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Connection, func, select

from ..store.models import DELIVERIES, REGISTRATIONS

if TYPE_CHECKING:
    from ..blocking.result import CallResult
    from ..queue.records import Record
    from ..store.engine import Database

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: Registrations named one by one in per-registration gauges; the rest roll up into "other".
REGISTRATION_CAP = 50
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """The ``hookruntime_*`` metrics. :meth:`bind` gives the parts read on scrape."""

    def __init__(self, cache: float = 2.0) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.deliveries = Counter(
            "hookruntime_deliveries",
            "Delivery attempts by the state they left their delivery in.",
            ("topic", "outcome"),
            registry=registry,
        )
        self.delivery_seconds = _TopicHistogram(
            "hookruntime_delivery_seconds",
            "Latency of delivery attempts (request sent to response read).",
            _LATENCY_BUCKETS,
        )
        registry.register(self.delivery_seconds)
        self.calls = Counter(
            "hookruntime_calls",
            "Blocking calls by merged decision (allow or deny).",
            ("topic", "decision"),
            registry=registry,
        )
        self.call_seconds = Histogram(
            "hookruntime_call_seconds",
            "Duration of blocking calls, fan-out and merge included.",
            ("topic",),
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.receiver_outcomes = Counter(
            "hookruntime_receiver_outcomes",
            "Receivers' outcomes in blocking calls (ok, deny, timeout, error, invalid, "
            "circuit_open, cancelled).",
            ("topic", "status"),
            registry=registry,
        )
        self.disabled = Counter(
            "hookruntime_registrations_disabled",
            "Registrations this process disabled (410 Gone or failing continuously).",
            registry=registry,
        )
        self._scraped = _Scraped(cache)
        registry.register(self._scraped)

    def bind(
        self,
        database: Database,
        in_flight: Callable[[], Iterable[Mapping[str, int]]],
        breakers: Callable[[], Iterable[tuple[str, str]]],
    ) -> None:
        """What to read on scrape: the database, each worker's in-flight deliveries per
        registration, and ``(registration, state)`` of each circuit breaker."""
        self._scraped.database = database
        self._scraped.in_flight = in_flight
        self._scraped.breakers = breakers

    def unbind(self) -> None:
        self._scraped.database = None

    def recorded(self, results: Sequence[Record]) -> None:
        """Count one batch of written results."""
        outcomes: dict[tuple[str, str], int] = {}
        observe = self.delivery_seconds.observe
        for r in results:
            key = (r.topic, r.next_state.status)
            outcomes[key] = outcomes.get(key, 0) + 1
            observe(r.topic, r.latency_ms / 1000)
        for (topic, outcome), count in outcomes.items():
            self.deliveries.labels(topic, outcome).inc(count)

    def called(self, result: CallResult) -> None:
        self.calls.labels(result.topic, "allow" if result.allowed else "deny").inc()
        self.call_seconds.labels(result.topic).observe(result.elapsed)
        for status, count in Tally(o.status for o in result.outcomes).items():
            self.receiver_outcomes.labels(result.topic, status).inc(count)

    async def render(self) -> bytes:
        """The exposition text, the database gauges refreshed first when stale."""
        await self._scraped.refresh()
        return generate_latest(self.registry)


class _Scraped(Collector):
    """Gauges computed when scraped."""

    def __init__(self, cache: float) -> None:
        self.cache = cache
        self.database: Database | None = None
        self.in_flight: Callable[[], Iterable[Mapping[str, int]]] = tuple
        self.breakers: Callable[[], Iterable[tuple[str, str]]] = tuple
        self._read_at = -float("inf")
        self._depth = 0
        self._oldest_due = 0.0
        self._disabled = 0

    async def refresh(self) -> None:
        database = self.database
        if database is None or time.monotonic() - self._read_at < self.cache:
            return
        now = time.time()
        # A plain read (WAL readers do not wait on writers), not the hot path's writes.
        async with database.engine.connect() as conn:
            self._depth, oldest, self._disabled = await conn.run_sync(_queue_state)
        self._oldest_due = max(0.0, now - oldest) if oldest is not None else 0.0
        self._read_at = time.monotonic()

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "hookruntime_queue_depth",
            "Deliveries waiting or in flight (held ones of inactive registrations excluded).",
            value=self._depth,
        )
        yield GaugeMetricFamily(
            "hookruntime_oldest_due_seconds",
            "How long the longest-waiting due delivery has been due.",
            value=self._oldest_due,
        )
        yield GaugeMetricFamily(
            "hookruntime_disabled_registrations",
            "Registrations disabled for failing (410 Gone or continuous failures).",
            value=self._disabled,
        )
        flying = GaugeMetricFamily(
            "hookruntime_in_flight",
            f"Deliveries claimed by this process's workers and not finished, per "
            f"registration; beyond the {REGISTRATION_CAP} busiest, summed as 'other'.",
            labels=("registration",),
        )
        totals: Tally[str] = Tally()
        for counts in self.in_flight():
            totals.update(counts)
        for name, value in _capped(totals):
            flying.add_metric((name,), value)
        yield flying
        states: Tally[str] = Tally()
        tripped: Tally[str] = Tally()
        for registration, state in self.breakers():
            states[state] += 1
            if state != "closed":
                tripped[registration] = 1
        by_state = GaugeMetricFamily(
            "hookruntime_breakers",
            "Circuit breakers of blocking calls by state.",
            labels=("state",),
        )
        for state in ("closed", "open", "half_open"):
            by_state.add_metric((state,), states[state])
        yield by_state
        open_ = GaugeMetricFamily(
            "hookruntime_breaker_open",
            f"1 for each registration whose breaker is open or half-open (at most "
            f"{REGISTRATION_CAP} named; the rest summed as 'other').",
            labels=("registration",),
        )
        for name, value in _capped(tripped):
            open_.add_metric((name,), value)
        yield open_


class _TopicHistogram(Collector):
    """A histogram by topic, counted in plain lists: one bisect and two additions per
    value. (prometheus_client's Histogram takes a lock and walks its buckets for each
    value, several times the cost per delivery.) Updated and read on the event loop's thread."""

    def __init__(self, name: str, documentation: str, bounds: Sequence[float]) -> None:
        self.name, self.documentation = name, documentation
        self.bounds = tuple(bounds)
        # Per topic: a count per bucket (the last one past every bound), and the sum.
        self._topics: dict[str, tuple[list[int], list[float]]] = {}

    def observe(self, topic: str, value: float) -> None:
        found = self._topics.get(topic)
        if found is None:
            found = self._topics[topic] = ([0] * (len(self.bounds) + 1), [0.0])
        found[0][bisect_left(self.bounds, value)] += 1
        found[1][0] += value

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=("topic",))
        for topic, (counts, total) in self._topics.items():
            cumulative = list(accumulate(counts))
            buckets = [(_bound(b), c) for b, c in zip(self.bounds, cumulative, strict=False)]
            family.add_metric((topic,), [*buckets, ("+Inf", cumulative[-1])], total[0])
        yield family


def _bound(value: float) -> str:
    return repr(float(value))


def _capped(counts: Tally[str]) -> list[tuple[str, int]]:
    """The busiest :data:`REGISTRATION_CAP` by name, the rest summed as ``other``: a
    scrape's size stays bounded however many registrations there are."""
    ranked = counts.most_common()
    named, rest = ranked[:REGISTRATION_CAP], ranked[REGISTRATION_CAP:]
    if rest:
        named.append(("other", sum(value for _, value in rest)))
    return named


def _queue_state(conn: Connection) -> tuple[int, float | None, int]:
    # next_at is set exactly while a delivery is open: both read ix_deliveries_next only.
    # (A delivery in flight is "due" at its lease's end, so it never looks overdue.)
    open_ = DELIVERIES.c.next_at.is_not(None)
    depth = conn.execute(select(func.count()).where(open_)).scalar_one()
    oldest = conn.execute(select(func.min(DELIVERIES.c.next_at)).where(open_)).scalar_one()
    disabled = conn.execute(
        select(func.count()).where(
            REGISTRATIONS.c.active.is_(False), REGISTRATIONS.c.disabled_reason.is_not(None)
        )
    ).scalar_one()
    return int(depth), oldest, int(disabled)
