"""Targets: active registrations ready to send to (secrets opened, profile resolved),
cached per (org, topic) so that a blocking call or a worker does not read the
database for every request.

Writes made through this process's control plane drop the org's cache at once;
changes made by another process are seen within ``ttl`` seconds.

A refresh is shared: concurrent lookups of one key that find it expired wait on one
query. Opened secrets are kept by (registration id, ``rev``), which every write
changes, so a refresh that finds a registration unchanged decrypts nothing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
from sqlalchemy import select

from .profiles import PROFILES, Message, Profile, RetryPolicy, SignedRequest
from .registrations import Registrations
from .store.engine import Database
from .store.models import REGISTRATION_TOPICS, REGISTRATIONS

__all__ = ["Directory", "Target"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Target:
    registration_id: str
    org: str
    url: str
    profile: Profile
    secrets: tuple[str, ...]
    headers: Mapping[str, str]
    priority: int
    created_at: float
    on_failure: str | None
    timeout: float | None
    signed_responses: bool
    integration_id: str
    ordered: bool
    retry_schedule: tuple[float, ...] | None
    max_attempts: int | None

    @property
    def retry(self) -> RetryPolicy:
        """The profile's retry policy with this registration's overrides."""
        default = self.profile.retry
        return RetryPolicy(
            schedule=default.schedule if self.retry_schedule is None else self.retry_schedule,
            timeout=default.timeout if self.timeout is None else self.timeout,
        )

    def request(
        self,
        topic: str,
        event_id: str,
        payload: Any,
        *,
        timestamp: float | None = None,
        extra: Mapping[str, str] | None = None,
        raw: bytes | None = None,
    ) -> SignedRequest:
        """The signed request for one attempt: custom headers, then the profile's own.
        ``raw`` is ``payload`` already serialised compactly, when the caller has it."""
        rendered = self.profile.render(
            Message(
                topic,
                event_id,
                payload,
                self.secrets,
                time.time() if timestamp is None else timestamp,
                self.integration_id,
                raw,
            )
        )
        headers = {**self.headers, **rendered.headers}
        if extra:
            headers.update(extra)
        return SignedRequest(headers, rendered.body)


class Directory:
    """Active targets of each (org, topic), in registration order: ``priority``
    ascending, then creation time."""

    def __init__(self, database: Database, registrations: Registrations, ttl: float = 1.0) -> None:
        self._db = database
        self._registrations = registrations
        self._ttl = ttl
        self._cache: dict[tuple[str, str], tuple[float, tuple[Target, ...]]] = {}
        self._by_id: dict[str, tuple[float, Target | None]] = {}
        self._loading: dict[Hashable, anyio.Event] = {}
        #: Built targets by registration id, with their rev and the time their secrets
        #: change.
        self._built: dict[str, tuple[str, float, Target]] = {}
        #: Moves on every invalidation: a load begun before one is not kept.
        self._generation = 0
        registrations.on_change(self.invalidate)

    def invalidate(self, org: str | None = None) -> None:
        self._generation += 1
        if org is None:
            self._cache.clear()
            self._by_id.clear()
            self._built.clear()
            return
        for rid in [rid for rid, (_, _, t) in self._built.items() if t.org == org]:
            del self._built[rid]
        for key in [k for k in self._cache if k[0] == org]:
            del self._cache[key]
        for rid in [rid for rid, (_, t) in self._by_id.items() if t is None or t.org == org]:
            del self._by_id[rid]

    async def target(self, registration_id: str) -> Target | None:
        """One registration, active or not, by id; None when it no longer exists.

        Concurrent misses for one id share a single query (a worker starts hundreds of
        deliveries of one registration at once)."""

        async def load() -> Target | None:
            query = select(REGISTRATIONS).where(REGISTRATIONS.c.id == registration_id)
            row = await self._db.transaction(
                lambda conn: conn.execute(query).mappings().one_or_none()
            )
            return None if row is None else self._target(dict(row))

        return await self._shared(self._by_id, registration_id, load)

    async def targets(self, org: str, topic: str) -> tuple[Target, ...]:
        """Concurrent misses for one (org, topic) share a single query (hundreds of
        blocking calls find the entry expired at the same moment)."""

        async def load() -> tuple[Target, ...]:
            query = (
                select(REGISTRATIONS)
                .join(
                    REGISTRATION_TOPICS,
                    REGISTRATION_TOPICS.c.registration_id == REGISTRATIONS.c.id,
                )
                .where(
                    REGISTRATION_TOPICS.c.org_id == org,
                    REGISTRATION_TOPICS.c.topic == topic,
                    REGISTRATIONS.c.active.is_(True),
                )
                .order_by(REGISTRATIONS.c.priority, REGISTRATIONS.c.created_at, REGISTRATIONS.c.id)
            )
            rows = await self._db.transaction(lambda conn: conn.execute(query).mappings().all())
            return tuple(self._target(dict(row)) for row in rows)

        return await self._shared(self._cache, (org, topic), load)

    async def _shared(
        self, cache: dict[Any, tuple[float, T]], key: Hashable, load: Callable[[], Awaitable[T]]
    ) -> T:
        """``cache[key]`` while fresh; else one ``load()`` whose result every concurrent
        caller takes."""
        while True:
            cached = cache.get(key)
            if cached is not None and cached[0] > time.monotonic():
                return cached[1]
            loading = self._loading.get(key)
            if loading is None:
                break
            await loading.wait()
        self._loading[key] = done = anyio.Event()
        try:
            # Through the hot path's transactions, not a session: on a SQLite file those
            # run inline, where a session's many trips through the event loop each wait
            # out a turn behind the emits and claims (measured: ~1 s under a bulk emit).
            generation = self._generation
            found = await load()
            if generation == self._generation:
                cache[key] = (time.monotonic() + self._ttl, found)
            return found
        finally:
            del self._loading[key]
            done.set()

    def _target(self, row: dict[str, Any]) -> Target:
        built = self._built.get(row["id"])
        if built is not None and built[0] == row["rev"] and built[1] > time.time():
            return built[2]
        target = self._build(row)
        # A rotated-out secret signs until its grace period ends: rebuild then.
        until = row.get("previous_secret_until")
        expires = until if row.get("previous_secret") and until else math.inf
        self._built[row["id"]] = (row["rev"], expires, target)
        return target

    def _build(self, row: dict[str, Any]) -> Target:
        schedule = row["retry_schedule"]
        return Target(
            registration_id=row["id"],
            org=row["org_id"],
            url=row["url"],
            profile=PROFILES[row["profile"]],
            secrets=tuple(self._registrations.secrets(row)),
            headers=self._registrations.headers(row),
            priority=row["priority"],
            created_at=row["created_at"],
            on_failure=row["on_failure"],
            timeout=row["timeout"],
            signed_responses=row["signed_responses"],
            integration_id=row["integration_id"],
            ordered=row["ordered"],
            retry_schedule=None if schedule is None else tuple(schedule),
            max_attempts=row["max_attempts"],
        )
