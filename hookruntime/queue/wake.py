"""Waking idle workers the moment work arrives, instead of at the next poll.

In-process: :meth:`Wakeup.notify` after an emit commits. PostgreSQL: emits send
``NOTIFY hookruntime_deliveries`` inside their transaction (delivered on commit, to
every listening worker on every host); :func:`listen` turns those into ``notify()``.
"""

from __future__ import annotations

import logging

import anyio
import asyncpg

from ..store.engine import Database, asyncpg_dsn

__all__ = ["CHANNEL", "Wakeup", "listen"]

CHANNEL = "hookruntime_deliveries"
log = logging.getLogger("hookruntime.worker")


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
