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
from sqlalchemy import Connection, func, select
from sqlalchemy.dialects import postgresql, sqlite

from ..errors import ConflictError, ValidationError
from ..store.models import DELIVERIES, EVENTS

__all__ = ["Published", "digest", "first_answer", "in_use", "request_digest", "take_key"]

#: Events up to this size serialised are hashed on the event loop, larger ones on a thread.
_INLINE = 32 * 1024


class Published(NamedTuple):
    """What a publish wrote: the events' ids in order, the deliveries written for each
    event (every event of one publish goes to the same registrations), and whether the
    answer is a replay: the idempotency key named an event already written, so
    nothing was written this time."""

    ids: list[str]
    deliveries: int
    replayed: bool = False


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


def take_key(conn: Connection, row: dict[str, Any]) -> bool:
    """Insert the event ``row`` unless its org has an event under its idempotency key;
    whether it was inserted."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    written = conn.execute(
        insert(EVENTS)
        .values(row)
        .on_conflict_do_nothing(index_elements=[EVENTS.c.org_id, EVENTS.c.idempotency_key])
        .returning(EVENTS.c.id)
    ).first()
    return written is not None


def first_answer(
    conn: Connection, org: str, idempotency_key: str, request_hash: str
) -> Published | None:
    """The answer of the event under the key (None: this transaction cannot see it);
    ConflictError when it was written for another request."""
    first = conn.execute(
        select(EVENTS.c.id, EVENTS.c.request_hash).where(
            EVENTS.c.org_id == org, EVENTS.c.idempotency_key == idempotency_key
        )
    ).first()
    if first is None:
        return None
    if first.request_hash != request_hash:
        raise ConflictError(
            f"idempotency key {idempotency_key!r} was used with a different request "
            f"(event {first.id!r})"
        )
    count = conn.execute(select(func.count()).where(DELIVERIES.c.event_id == first.id))
    return Published([first.id], int(count.scalar_one()), replayed=True)


def in_use(idempotency_key: str) -> ConflictError:
    return ConflictError(
        f"idempotency key {idempotency_key!r} is taken by an event this transaction "
        "cannot see yet; try again"
    )
