"""The attempt log, written off the hot path: callers hand rows to :meth:`AttemptLog.record`,
which never waits; a background task inserts them in batches with one Core statement.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import anyio
from anyio.abc import ObjectReceiveStream
from sqlalchemy import insert

from .engine import Database
from .models import ATTEMPTS

__all__ = ["AttemptLog"]

log = logging.getLogger("hookruntime.attempts")
_BATCH = 500


class AttemptLog:
    """Buffers up to ``capacity`` rows; past that, rows are dropped and counted rather
    than making a caller wait on the database."""

    def __init__(self, database: Database, capacity: int = 10_000, linger: float = 0.05) -> None:
        self._db = database
        self._linger = linger
        self._send, self._receive = anyio.create_memory_object_stream[dict[str, Any]](capacity)
        self._pending = 0
        self._idle = anyio.Event()
        self._idle.set()
        self.dropped = 0
        self.written = 0

    def record(self, **row: Any) -> None:
        row.setdefault("created_at", time.time())
        try:
            self._send.send_nowait(row)
        except (anyio.WouldBlock, anyio.ClosedResourceError):
            self.dropped += 1
            if self.dropped in (1, 100) or self.dropped % 10_000 == 0:
                log.warning("attempt log is full; %d rows dropped so far", self.dropped)
            return
        if self._pending == 0:
            self._idle = anyio.Event()
        self._pending += 1

    async def flush(self) -> None:
        """Wait until every recorded row is written."""
        await self._idle.wait()

    async def run(self) -> None:
        """Write rows until the stream closes (see :meth:`close`)."""
        receive: ObjectReceiveStream[dict[str, Any]] = self._receive
        async with receive:
            async for row in receive:
                batch = [row]
                # Linger briefly so that a steady trickle of calls costs one
                # transaction per batch rather than one per row.
                with anyio.move_on_after(self._linger):
                    while len(batch) < _BATCH:
                        try:
                            batch.append(await receive.receive())
                        except anyio.EndOfStream:
                            break
                await self._write(batch)

    async def close(self) -> None:
        await self._send.aclose()

    async def _write(self, batch: list[dict[str, Any]]) -> None:
        try:
            async with self._db.begin() as conn:
                await conn.execute(insert(ATTEMPTS), batch)
            self.written += len(batch)
        except Exception:
            log.exception("could not write %d attempt rows; they are lost", len(batch))
        finally:
            self._pending -= len(batch)
            if self._pending == 0:
                self._idle.set()
