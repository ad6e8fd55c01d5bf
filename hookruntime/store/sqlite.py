"""Write transactions on a SQLite file, run inline on the event loop, in one piece.

Through aiosqlite every statement, fetch, cursor close and commit is a trip through the
event loop, and under load each trip waits a full loop turn: a 256-row claim took 10
trips and ~130 ms against ~3 ms of work. On a database thread instead, sqlite3 drops the
GIL at every row and waits to take it back from the busy loop (~85 ms for a 256-row
result write). Inline, the loop pauses for the few milliseconds of work.

Two things could make an inline transaction wait, and neither does here: the file's write
lock held by another process (the transaction fails at ``BEGIN IMMEDIATE`` without
waiting, and runs again on a thread that may wait), and a WAL checkpoint with its fsyncs
(inline connections never checkpoint; a thread does it once the WAL has grown).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError

__all__ = ["InlineWriter", "private_file", "sqlite_pragmas"]

T = TypeVar("T")
log = logging.getLogger("hookruntime.store")

#: Checkpoint once the WAL is this large (SQLite's own default is 1,000 pages, ~4 MB).
CHECKPOINT_BYTES = 4 * 1024 * 1024


def sqlite_pragmas(busy_ms: int, *, checkpoint: bool = True) -> Callable[[Any, Any], None]:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # WAL lets readers run beside the one writer; NORMAL is durable across process
        # crashes in WAL mode (only an OS crash can lose the last transactions).
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        if not checkpoint:
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()

    return on_connect


def private_file(path: Path) -> Callable[..., None]:
    """A ``do_connect`` listener that creates the database file, when missing, readable
    and writable by its owner only, before sqlite3 would create it world-readable; its
    -wal and -shm files take the database file's mode from SQLite itself."""

    def before_connect(*_args: Any) -> None:
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))

    return before_connect


def _immediate_transactions(engine: Engine) -> None:
    """Transactions that take the write lock at BEGIN: a locked file fails at once,
    before any work, never halfway through (sqlite3's own BEGIN comes late, before the
    first write, and can then meet a snapshot that cannot be upgraded)."""

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    def on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    event.listen(engine, "connect", on_connect)
    event.listen(engine, "begin", on_begin)


class InlineWriter:
    """Runs write transactions on one SQLite file. The caller serialises them (one
    in-process writer at a time)."""

    def __init__(self, url: URL, path: Path, busy_timeout: float = 10.0) -> None:
        sync_url = url.set(drivername="sqlite+pysqlite")
        self._inline = create_engine(sync_url, connect_args={"timeout": 0})
        self._waiting = create_engine(sync_url, connect_args={"timeout": busy_timeout})
        event.listen(self._inline, "connect", sqlite_pragmas(0, checkpoint=False))
        event.listen(self._waiting, "connect", sqlite_pragmas(int(busy_timeout * 1000)))
        for engine in (self._inline, self._waiting):
            event.listen(engine, "do_connect", private_file(path))
        _immediate_transactions(self._inline)
        _immediate_transactions(self._waiting)
        self._path = path
        self._wal = path.with_name(path.name + "-wal")
        self._checkpointer: threading.Thread | None = None

    async def run(self, work: Callable[[Connection], T]) -> T:
        try:
            result = _run(self._inline, work)
        except OperationalError as exc:
            if "database is locked" not in str(exc.orig):
                raise
            # Another process holds the write lock: wait for it off the event loop.
            return await anyio.to_thread.run_sync(_run, self._waiting, work)
        self._checkpoint_if_grown()
        return result

    def _checkpoint_if_grown(self) -> None:
        if self._checkpointer is not None and self._checkpointer.is_alive():
            return
        try:
            grown = self._wal.stat().st_size >= CHECKPOINT_BYTES
        except OSError:
            return
        if grown:
            self._checkpointer = threading.Thread(
                target=self._checkpoint, name="hookruntime-checkpoint", daemon=True
            )
            self._checkpointer.start()

    def _checkpoint(self) -> None:
        # PASSIVE: copies what it can without waiting on readers or writers. sqlite3 holds
        # no GIL while it runs, so the copy and its fsyncs cost the event loop nothing.
        try:
            conn = sqlite3.connect(self._path, timeout=10)
            try:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            finally:
                conn.close()
        except sqlite3.Error:
            log.exception("WAL checkpoint of %s failed; the next one will retry", self._path)

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.join()
        self._inline.dispose()
        self._waiting.dispose()


def _run(engine: Engine, work: Callable[[Connection], T]) -> T:
    with engine.begin() as conn:
        return work(conn)
