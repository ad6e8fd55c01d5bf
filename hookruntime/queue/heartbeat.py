"""Worker heartbeats: each worker keeps a row in ``workers`` fresh (every second or so)
and deletes it when it stops cleanly. A worker whose heartbeat is older than ``stale``
seconds is taken for dead: any live worker deletes its row and makes the deliveries
leased to it due at once, instead of when their leases run out (a minute by default).
One of this host whose process is gone is taken for dead sooner, once it has missed a
couple of beats: a worker restarted after a kill has the old one's work back in ~3 s.

A worker judged dead that was only stalled comes back with its next beat; whatever it
still sends then is fenced off by the lease tokens (:mod:`hookruntime.queue.records`).
Heartbeats are compared with each host's own clock, as leases are: hosts whose clocks
differ by more than ``stale`` seconds would take each other's work early.
"""

from __future__ import annotations

import os
import socket

from sqlalchemy import ColumnElement, Connection, Insert, delete, exists, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ..store.engine import Database
from ..store.models import DELIVERIES, WORKERS

__all__ = ["Heartbeat"]


class Heartbeat:
    """One worker's row in ``workers``, and the sweep every beat makes."""

    def __init__(self, database: Database, worker_id: str, started_at: float) -> None:
        self._db = database
        self.worker_id = worker_id
        self._started_at = started_at
        self._host = socket.gethostname()[:255]

    def _upsert(self, now: float) -> Insert:
        row = {
            "id": self.worker_id,
            "host": self._host,
            "pid": os.getpid(),
            "started_at": self._started_at,
            "heartbeat_at": now,
        }
        renewed = {"heartbeat_at": now}
        if self._db.dialect == "postgresql":
            pg = postgresql.insert(WORKERS).values(row)
            return pg.on_conflict_do_update(index_elements=[WORKERS.c.id], set_=renewed)
        lite = sqlite.insert(WORKERS).values(row)
        return lite.on_conflict_do_update(index_elements=[WORKERS.c.id], set_=renewed)

    async def start(self, now: float) -> int:
        """The first beat; and the deliveries leased to workers that have no row at all
        (gone before this table existed, or whose row went with a sweep while they
        still held work) are taken back. Returns how many were."""

        def first(conn: Connection) -> int:
            conn.execute(self._upsert(now))
            alive = exists().where(WORKERS.c.id == DELIVERIES.c.worker)
            return _take_back(conn, ~alive, now)

        return await self._db.transaction(first)

    async def beat(self, now: float, stale: float, missed: float) -> int:
        """Renew this worker's heartbeat and take back the work of workers whose
        heartbeat is older than ``stale`` seconds, or than ``missed`` seconds when theirs
        is a process of this host that no longer runs (a restart after a kill then
        recovers in about ``missed`` seconds). Return how many deliveries were."""
        quiet = now - min(stale, missed)

        def renew(conn: Connection) -> int:
            conn.execute(self._upsert(now))
            silent = conn.execute(
                select(WORKERS.c.id, WORKERS.c.host, WORKERS.c.pid, WORKERS.c.heartbeat_at).where(
                    WORKERS.c.heartbeat_at < quiet
                )
            ).all()
            dead = [
                worker_id
                for worker_id, host, pid, at in silent
                if at < now - stale or (host == self._host and not _running(pid))
            ]
            if not dead:
                return 0
            # Unless it beat meanwhile (another host's sweep may be looking too).
            gone = (
                conn.execute(
                    delete(WORKERS)
                    .where(WORKERS.c.id.in_(dead), WORKERS.c.heartbeat_at < quiet)
                    .returning(WORKERS.c.id)
                )
                .scalars()
                .all()
            )
            # Rare (a worker died), so the scan of its deliveries is too.
            return _take_back(conn, DELIVERIES.c.worker.in_(gone), now) if gone else 0

        return await self._db.transaction(renew)

    async def stop(self) -> None:
        """Delete this worker's row (a clean stop: it holds no more leases)."""
        await self._db.execute(delete(WORKERS).where(WORKERS.c.id == self.worker_id))


def _running(pid: int) -> bool:
    # Another namespace's process of the same name and host would look gone: that is
    # why this is asked only of a worker that has also missed a couple of beats.
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # someone else's process: running
    return True


def _take_back(conn: Connection, owned: ColumnElement[bool], now: float) -> int:
    # Due now, still "delivering" under the dead worker's lease token: the next claim
    # takes it (a new token), and until then a result it did record still counts.
    statement = (
        update(DELIVERIES)
        .where(
            DELIVERIES.c.status == "delivering",
            DELIVERIES.c.next_at > now,
            owned,
        )
        .values(next_at=now)
    )
    return int(conn.execute(statement).rowcount)
