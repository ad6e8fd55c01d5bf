"""Idempotency keys of events: an event written under a key answers every repeat of
its request, and the unique index on (org, idempotency key) decides between twins.

The event row is written first with ``ON CONFLICT DO NOTHING`` (:func:`take_key`): on
PostgreSQL it waits for a twin's transaction to end, and the loser then reads the
winner's event in its own transaction (:func:`first_answer`). No statement fails, so a
host's transaction that replays or conflicts stays usable.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, NamedTuple

import anyio
from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ..errors import ConflictError, ValidationError
from ..store.models import DELIVERIES, EVENTS
from ..store.writing import Writer

__all__ = [
    "MAX_KEY",
    "Published",
    "check_idempotency_key",
    "digest",
    "first_answer",
    "in_use",
    "request_digest",
    "take_key",
]

#: Longest ``key`` and idempotency key of an event (their columns' length).
MAX_KEY = 200
#: Events up to this size serialised are hashed on the event loop, larger ones on a thread.
_INLINE = 32 * 1024
#: The unique index's own predicate: only events emitted with a key are in it.
_KEYED = text("idempotency_key IS NOT NULL")


class Published(NamedTuple):
    """What a publish wrote: the events' ids in order, the deliveries written for each
    event (every event of one publish goes to the same registrations), and whether the
    answer is a replay: the idempotency key named an event already written, so
    nothing was written this time."""

    ids: list[str]
    deliveries: int
    replayed: bool = False


def check_idempotency_key(idempotency_key: object) -> None:
    if not isinstance(idempotency_key, str) or not 0 < len(idempotency_key) <= MAX_KEY:
        raise ValidationError.single(
            "idempotency_key", f"must be a string of 1 to {MAX_KEY} characters"
        )


def request_digest(topic: str, document: Any, key: str | None) -> str:
    """What an idempotency key is compared by: the request's topic, data and key, with
    object members in any order (JSON objects are unordered)."""
    request = {"topic": topic, "data": document} | ({} if key is None else {"key": key})
    try:
        encoded = json.dumps(request, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise ValidationError.single("data", f"is not JSON: {exc}") from None
    return hashlib.sha256(encoded.encode()).hexdigest()


async def digest(topic: str, document: Any, key: str | None, size: int) -> str:
    """:func:`request_digest` of an event of ``size`` bytes serialised: tens of
    milliseconds for a large one, so not on the event loop."""
    if size <= _INLINE:
        return request_digest(topic, document, key)
    return await anyio.to_thread.run_sync(request_digest, topic, document, key)


def take_key(writer: Writer, row: dict[str, Any], *, postgresql: bool) -> bool:
    """Insert the event ``row`` unless its org has an event under its idempotency key;
    whether it was inserted."""
    insert = postgresql_insert if postgresql else sqlite_insert
    written = writer.rows(
        insert(EVENTS)
        .values(row)
        .on_conflict_do_nothing(
            index_elements=[EVENTS.c.org_id, EVENTS.c.idempotency_key], index_where=_KEYED
        )
        .returning(EVENTS.c.id)
    )
    return bool(written)


def first_answer(
    writer: Writer, org: str, idempotency_key: str, request_hash: str
) -> Published | None:
    """The answer of the event under the key (None: this transaction cannot see it);
    ConflictError when it was written for another request."""
    found = writer.rows(
        select(EVENTS.c.id, EVENTS.c.request_hash).where(
            EVENTS.c.org_id == org, EVENTS.c.idempotency_key == idempotency_key
        )
    )
    if not found:
        return None
    event_id, first_hash = found[0]
    if first_hash != request_hash:
        raise ConflictError(
            f"idempotency key {idempotency_key!r} was used with a different request "
            f"(event {event_id!r})"
        )
    count = writer.rows(select(func.count()).where(DELIVERIES.c.event_id == event_id))
    return Published([event_id], int(count[0][0]), replayed=True)


def in_use(idempotency_key: str) -> ConflictError:
    return ConflictError(
        f"idempotency key {idempotency_key!r} is taken by an event this transaction "
        "cannot see yet; try again"
    )
