"""The transactional outbox: ``emit`` writes one event row and one delivery row per
matching active registration, in one transaction, with Core statements in batches.

With ``session=`` the rows join the host's own SQLAlchemy transaction: the event
exists if and only if the host commits, and idle workers wake on that commit.
:meth:`Outbox.publish_through` does the same, synchronously, through a connection of a
synchronous host (see :mod:`hookruntime.queue.writers`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from ..catalog import Catalog
from ..errors import FieldError, ValidationError
from ..ids import new_id
from ..observe.tracing import current_traceparent
from ..store.engine import Database
from ..store.fanout import NewEvent, Owner, fan_out
from ..store.orgs import valid_org
from .claim import Claimed, new_lease_token
from .handoff import CommitHandOff
from .idempotency import (
    MAX_KEY,
    Published,
    digest,
    first_answer,
    in_use,
    request_digest,
    take_key,
)
from .intake import Intake
from .wake import Wakeup
from .writers import Own, Writer

__all__ = ["MAX_KEY", "MAX_PAYLOAD", "Outbox"]


#: Largest serialised ``data`` of one event.
MAX_PAYLOAD = 1024 * 1024


class Outbox:
    """With an ``intake`` (that of a worker in the same process), new deliveries it has
    room for are written already claimed by its worker and handed over on commit: the
    first attempt skips the claim round trip. Should the process die first, their lease
    lapses and any worker redoes them. Deliveries of ordered registrations always
    go through the claim, which keeps their order."""

    def __init__(
        self,
        database: Database,
        catalog: Catalog,
        wakeup: Wakeup,
        intake: Intake | None = None,
    ) -> None:
        self._db = database
        self._catalog = catalog
        self._wakeup = wakeup
        self._intake = intake
        self._handoff = CommitHandOff(self._committed)

    async def publish(
        self,
        topic_name: str,
        items: Iterable[Any],
        *,
        org: str,
        keys: Sequence[str | None] | None = None,
        session: AsyncSession | None = None,
        only: str | None = None,
    ) -> tuple[list[str], int]:
        """Write the events; return their ids and the number of deliveries per event.
        ``only`` limits the deliveries to one registration (a test event)."""
        events, now = self._events(topic_name, items, org, keys)
        if session is None:
            count, direct = await self._db.transaction(
                lambda conn: self._write(Own(conn), org, topic_name, events, now, only)
            )
            # Deliveries handed straight to the worker need no claim: wake one only for
            # those left pending (claims that found nothing halved the rate of single emits).
            self._committed(direct, wake=len(direct) < count * len(events))
        else:
            count, direct = await session.run_sync(
                lambda own: self._write(Own(own.connection()), org, topic_name, events, now, only)
            )
            self._handoff.add(session.sync_session, direct)
        return [e.id for e in events], count

    async def publish_once(
        self,
        topic_name: str,
        document: Any,
        *,
        org: str,
        key: str | None,
        idempotency_key: str,
        session: AsyncSession | None = None,
    ) -> Published:
        """Write one event unless ``org`` already has one under ``idempotency_key``: the
        same request again (topic, data and key) answers the first event, replayed and
        with nothing written; another request raises ConflictError (see
        :mod:`.idempotency`)."""
        events, now = self._events(topic_name, [document], org, [key])
        request_hash = await digest(topic_name, document, key, len(events[0].payload))
        event = events[0]._replace(idempotency_key=idempotency_key, request_hash=request_hash)
        if session is not None:
            written = await session.run_sync(
                lambda own: self._write_once(Own(own.connection()), org, topic_name, event, now)
            )
            if written is None:  # a snapshot older than the twin's commit (REPEATABLE READ)
                raise in_use(idempotency_key)
            if not written[0].replayed:
                self._handoff.add(session.sync_session, written[1])
            return written[0]
        for _ in range(2):  # the twin's event vanished in between (pruned): write again
            written = await self._db.transaction(
                lambda conn: self._write_once(Own(conn), org, topic_name, event, now)
            )
            if written is not None:
                published, direct = written
                if not published.replayed:
                    self._committed(direct, wake=len(direct) < published.deliveries)
                return published
        raise in_use(idempotency_key)

    def publish_through(
        self,
        writer: Writer,
        topic_name: str,
        items: Iterable[Any],
        *,
        org: str,
        keys: Sequence[str | None] | None = None,
    ) -> tuple[list[str], int]:
        """As :meth:`publish`, synchronously, in the calling thread, through a host's
        connection in the host's transaction. Its deliveries are left for a claim (this
        thread is not the worker's), which the host's commit wakes."""
        events, now = self._events(topic_name, items, org, keys)
        count, _ = self._write(writer, org, topic_name, events, now, claim=False)
        return [e.id for e in events], count

    def publish_once_through(
        self,
        writer: Writer,
        topic_name: str,
        document: Any,
        *,
        org: str,
        key: str | None,
        idempotency_key: str,
    ) -> Published:
        """As :meth:`publish_once`, synchronously, through a host's connection in the
        host's transaction (as :meth:`publish_through`)."""
        events, now = self._events(topic_name, [document], org, [key])
        request_hash = request_digest(topic_name, document, key)
        event = events[0]._replace(idempotency_key=idempotency_key, request_hash=request_hash)
        written = self._write_once(writer, org, topic_name, event, now, claim=False)
        if written is None:  # a snapshot older than the twin's commit (REPEATABLE READ)
            raise in_use(idempotency_key)
        return written[0]

    def wake(self) -> None:
        """Wake this process's idle workers (call on the runtime's event loop)."""
        self._wakeup.notify()

    def _events(
        self,
        topic_name: str,
        items: Iterable[Any],
        org: str,
        keys: Sequence[str | None] | None,
    ) -> tuple[list[NewEvent], float]:
        topic = self._catalog.get_topic(topic_name)
        if topic.blocking:
            raise ValidationError.single(
                "topic", f"{topic_name!r} is a blocking topic: use call(), not emit()"
            )
        documents = list(items)
        key_list: list[str | None] = list(keys) if keys is not None else [None] * len(documents)
        self._check(org, documents, key_list)
        for index, document in enumerate(documents):
            topic.validate(document, "data" if len(documents) == 1 else f"data.{index}")
        now = time.time()
        traceparent = current_traceparent()
        events = [
            NewEvent(
                new_id("evt"),
                org,
                topic_name,
                key,
                _serialise(document, index),
                None,  # the idempotency key and request hash: see publish_once
                None,
                now,
                traceparent,
            )
            for index, (document, key) in enumerate(zip(documents, key_list, strict=True))
        ]
        return events, now

    def _committed(self, direct: list[Claimed], wake: bool = True) -> None:
        if direct and self._intake is not None:
            self._intake.accept(direct)
        if wake:
            self._wakeup.notify()

    def _write_once(
        self,
        writer: Writer,
        org: str,
        topic: str,
        event: NewEvent,
        now: float,
        *,
        claim: bool = True,
    ) -> tuple[Published, list[Claimed]] | None:
        """The idempotent event's rows, or the answer of the event already under its key
        (None: under the key, but invisible to this transaction)."""
        # The event row first, as in fan_out, and for the same reason.
        postgresql = self._db.dialect == "postgresql"
        if take_key(writer, event._asdict(), postgresql=postgresql):
            count, direct = self._write(
                writer, org, topic, [event], now, claim=claim, events_written=True
            )
            return Published([event.id], count), direct
        assert event.idempotency_key is not None and event.request_hash is not None
        answer = first_answer(writer, org, event.idempotency_key, event.request_hash)
        return None if answer is None else (answer, [])

    def _write(
        self,
        writer: Writer,
        org: str,
        topic: str,
        events: list[NewEvent],
        now: float,
        only: str | None = None,
        *,
        claim: bool = True,
        events_written: bool = False,
    ) -> tuple[int, list[Claimed]]:
        intake = self._intake if claim else None
        owner = None
        if intake is not None:
            owner = Owner(intake.id, now + intake.lease, new_lease_token(), intake.room())
        postgresql = self._db.dialect == "postgresql"
        count, direct = fan_out(
            writer,
            org,
            topic,
            events,
            now,
            postgresql=postgresql,
            only=only,
            owner=owner,
            events_written=events_written,
        )
        if owner is None:
            return count, []
        return count, [
            Claimed(
                id=row.id,
                event_id=row.event_id,
                registration_id=row.registration_id,
                org_id=org,
                topic=topic,
                attempts=0,
                payload=event.payload,
                lease_until=owner.lease_until,
                lease_token=owner.lease_token,
            )
            for row, event in direct
        ]

    @staticmethod
    def _check(org: str, documents: list[Any], keys: list[str | None]) -> None:
        errors: list[FieldError] = []
        if not valid_org(org):
            errors.append(FieldError("org", "must be 1 to 64 letters, digits, . _ -"))
        if not documents:
            errors.append(FieldError("data", "give at least one event"))
        if len(keys) != len(documents):
            errors.append(FieldError("keys", "give one key (or None) per event"))
        errors.extend(
            FieldError("key", f"must be a string of at most {MAX_KEY} characters")
            for key in keys
            if key is not None and (not isinstance(key, str) or not 0 < len(key) <= MAX_KEY)
        )
        if errors:
            raise ValidationError(errors)


# One encoder for every event: json.dumps with options builds a new one per call (~2 us).
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def _serialise(document: Any, index: int) -> str:
    try:
        payload = _ENCODE(document)
    except (TypeError, ValueError) as exc:
        raise ValidationError.single(f"data.{index}", f"is not JSON: {exc}") from None
    if len(payload) > MAX_PAYLOAD:
        raise ValidationError.single(
            f"data.{index}", f"is {len(payload)} bytes serialised; the limit is {MAX_PAYLOAD}"
        )
    return payload
