"""Waking idle workers the moment work arrives, instead of at the next poll.

In-process: :meth:`Wakeup.notify` after an emit commits. PostgreSQL: emits send
``NOTIFY hookruntime_deliveries`` inside their transaction (delivered on commit, to
every listening worker on every host); :func:`listen` turns those into ``notify()``.
SQLite: :func:`watch_sqlite` reads ``PRAGMA data_version``, which changes when any other
connection, in any process, commits to the file, each time the ``-wal`` file is written
(inotify, :mod:`.filewatch`; every few milliseconds where that is missing).
Retries a worker scheduled itself wake it when they fall due (:class:`Dues`).
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import math
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
import asyncpg

from ..store.engine import Database, asyncpg_dsn
from ..store.fanout import CHANNEL
from .filewatch import file_writes

__all__ = ["CHANNEL", "SQLITE_WATCH", "Dues", "Wakeup", "listen", "watch_sqlite"]

log = logging.getLogger("hookruntime.worker")

#: Seconds between two reads of SQLite's ``data_version``: at most one wake-up per this
#: long, and the poll where inotify is missing.
SQLITE_WATCH = 0.003
#: Without a write to the ``-wal`` file, ``data_version`` is read this often anyway: a
#: change a lost event would hide is seen then, and the watch heeds being stopped.
_QUIET_READ = 0.25


class Wakeup:
    def __init__(self) -> None:
        self._event = anyio.Event()

    def notify(self) -> None:
        self._event.set()

    async def wait(self, seconds: float) -> None:
        """Return on the next notify (or one since the last wait), or after ``seconds``."""
        with anyio.move_on_after(max(seconds, 0.0)):
            await self._event.wait()
        if self._event.is_set():
            self._event = anyio.Event()


class Dues:
    """The times retries fall due, soonest first, each kept until a claim has looked
    for it: a newly due earlier one is never hidden behind one already passed.
    Those further ahead than ``horizon`` are left to the poll."""

    def __init__(self, horizon: float = 300.0) -> None:
        self._horizon = horizon
        self._heap: list[float] = []

    def add(self, times: Iterable[float | None]) -> bool:
        """Keep ``times``; True when the soonest is now earlier than before."""
        heap, now = self._heap, time.time()
        first = heap[0] if heap else math.inf
        for at in times:
            if at is not None and at - now < self._horizon:
                heapq.heappush(heap, at)
        return bool(heap) and heap[0] < first

    def wait(self, looked: float | None = None) -> float:
        """Seconds until the soonest; those due by ``looked`` (the start of a claim
        that found nothing) are done with."""
        heap = self._heap
        if looked is not None:
            while heap and heap[0] <= looked:
                heapq.heappop(heap)
        return heap[0] - time.time() if heap else math.inf


async def listen(database: Database, wakeup: Wakeup) -> None:
    """Hold a LISTEN connection for as long as the task runs; reconnect on loss."""
    dsn = asyncpg_dsn(database.url)
    while True:
        try:
            connection = await asyncpg.connect(dsn)
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("LISTEN connection failed (%s); polling until it returns", exc)
            await anyio.sleep(5)
            continue
        lost = anyio.Event()
        try:
            connection.add_termination_listener(lambda _c, lost=lost: lost.set())
            await connection.add_listener(CHANNEL, lambda *_args: wakeup.notify())
            wakeup.notify()  # anything emitted while we were not listening
            await lost.wait()
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(2):
                await connection.close()


async def watch_sqlite(path: str, wake: Callable[[], None], every: float = SQLITE_WATCH) -> None:
    """Call ``wake`` (on the event loop) after every commit to the SQLite file at ``path``
    by another connection.

    The reads run in a thread of their own. Where inotify works they follow the writes to
    the ``-wal`` file, so an idle worker reads nothing and wakes within a millisecond; else
    they poll every ``every`` seconds (the README's "Measured design choices"). Commits of
    this process's own (a result, a heartbeat) count too: the worker heeds them only when
    idle, where one costs an empty claim.
    """
    stop = threading.Event()
    token = anyio.lowlevel.current_token()
    database = Path(path)
    writes = file_writes(database.with_name(database.name + "-wal"))

    def pause() -> bool:
        """Until the next look; True when told of a write to the ``-wal`` file."""
        if writes is None:
            stop.wait(every)
            return False
        return writes.wait(_QUIET_READ)

    def watch() -> None:
        conn = sqlite3.connect(path, timeout=0.05, isolation_level=None, check_same_thread=False)
        try:
            seen: int | None = None
            with contextlib.suppress(sqlite3.Error):  # failing here, the loop reads it
                seen = _changed(conn, None, False)
            while not stop.is_set():
                told = pause()
                try:
                    version = _changed(conn, seen, told)
                except sqlite3.Error as exc:
                    log.warning("reading data_version failed (%s); trying again", exc)
                    stop.wait(1.0)
                    continue
                if seen is not None and version != seen:
                    try:
                        anyio.from_thread.run_sync(wake, token=token)
                    except RuntimeError:  # the event loop has ended: nothing left to wake
                        return
                    stop.wait(every)  # a burst of commits is one wake-up
                seen = version
        finally:
            conn.close()
            if writes is not None:
                writes.close()

    try:
        await anyio.to_thread.run_sync(watch, abandon_on_cancel=True)
    finally:
        stop.set()
        if writes is not None:
            writes.interrupt()


def _changed(conn: sqlite3.Connection, seen: int | None, written: bool) -> int:
    """``data_version`` now. Told of a write to the ``-wal`` file, which comes just
    before the commit it belongs to is visible, look again for a few milliseconds."""
    version: int = conn.execute("PRAGMA data_version").fetchone()[0]
    for _ in range(25 if written and seen is not None else 0):
        if version != seen:
            break
        time.sleep(0.0002)
        version = conn.execute("PRAGMA data_version").fetchone()[0]
    return version
