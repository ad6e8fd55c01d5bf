"""The attempt log of blocking calls, written off the hot path: callers hand rows
(:class:`CallAttempt`) to :meth:`AttemptLog.extend`, which never waits; a background
task inserts them in batches with one compiled statement. :func:`headers_excerpt` is
what a row keeps of a response's headers.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from typing import NamedTuple

import anyio

from .compiled import inserting
from .engine import Database
from .models import ATTEMPTS

__all__ = ["AttemptLog", "CallAttempt", "headers_excerpt"]

log = logging.getLogger("hookruntime.attempts")

EXCERPT_MAX_HEADERS = 20
EXCERPT_MAX_BYTES = 2048
_MAX_VALUE = 256
_REDACTED = "[redacted]"
# Values that may carry a credential or a session: the name is kept, the value never.
_SECRET = re.compile("cookie|auth|token|secret|key|signature|session|password", re.IGNORECASE)


def headers_excerpt(headers: Iterable[tuple[str, str]]) -> str | None:
    """A response's headers as a JSON list of ``[name, value]`` pairs, in order: at most
    :data:`EXCERPT_MAX_HEADERS` of them and :data:`EXCERPT_MAX_BYTES` of JSON, long values cut,
    credential-like values (``Set-Cookie``, ``Authorization``, …) redacted. Runs once
    per attempt on the sending path, so it sizes the JSON by estimate, serialises once."""
    kept: list[tuple[str, str]] = []
    size = 2
    for name, value in headers:
        if _SECRET.search(name):
            value = _REDACTED
        elif len(value) > _MAX_VALUE:
            value = value[:_MAX_VALUE] + "…"
        name = name[:_MAX_VALUE]
        size += len(name) + len(value) + 8  # ["…", "…"],
        if size > EXCERPT_MAX_BYTES or len(kept) == EXCERPT_MAX_HEADERS:
            break
        kept.append((name, value))
    while kept:
        text = json.dumps(kept, ensure_ascii=False)
        if len(text.encode()) <= EXCERPT_MAX_BYTES:
            return text
        kept.pop()  # escapes or non-ASCII made it longer than estimated
    return None


class CallAttempt(NamedTuple):
    """One try of a blocking call (or its outcome when it was never sent), in the
    table's column order. ``call_detail`` is on one row of each call."""

    org_id: str
    registration_id: str
    call_id: str
    topic: str
    number: int
    outcome: str
    status_code: int | None
    latency_ms: float
    error: str | None
    call_detail: str | None
    created_at: float


# A tuple per row through a statement compiled once: on a SQLite file a batch of dicts
# through SQLAlchemy's parameter processing took ~20-25 us per row of the event loop,
# this ~12-15.
_INSERT = inserting(ATTEMPTS, CallAttempt)


class AttemptLog:
    """Buffers up to ``capacity`` rows; past that, rows are dropped and counted rather
    than making a caller wait on the database. Recording is a list append: the writer
    wakes once per batch, lingers ``linger`` seconds for more, and writes them all."""

    def __init__(self, database: Database, capacity: int = 10_000, linger: float = 0.05) -> None:
        self._db = database
        self._capacity = capacity
        self._linger = linger
        self._rows: list[CallAttempt] = []
        self._arrived = anyio.Event()
        self._idle = anyio.Event()
        self._idle.set()
        self._closed = False
        self.dropped = 0
        self.written = 0

    def extend(self, rows: Iterable[CallAttempt]) -> None:
        """Take rows as they are: the blocking path hands over a call's rows at once."""
        for row in rows:
            if self._closed or len(self._rows) >= self._capacity:
                self.dropped += 1
                if self.dropped in (1, 100) or self.dropped % 10_000 == 0:
                    log.warning("attempt log is full or closed; %d rows dropped", self.dropped)
                continue
            self._rows.append(row)
        if self._rows and not self._arrived.is_set():
            if self._idle.is_set():
                self._idle = anyio.Event()
            self._arrived.set()

    async def flush(self) -> None:
        """Wait until every recorded row is written."""
        await self._idle.wait()

    async def run(self) -> None:
        """Write rows in batches until :meth:`close`."""
        while not (self._closed and not self._rows):
            await self._arrived.wait()
            if not self._closed:
                await anyio.sleep(self._linger)
            batch, self._rows = self._rows, []
            self._arrived = anyio.Event()
            if batch:
                await self._write(batch)
            if not self._rows:
                self._idle.set()

    async def close(self) -> None:
        self._closed = True
        self._arrived.set()

    async def _write(self, batch: list[CallAttempt]) -> None:
        try:
            with anyio.CancelScope(shield=True):
                await self._db.transaction(lambda conn: _INSERT.run(conn, batch))
            self.written += len(batch)
        except Exception:
            log.exception("could not write %d attempt rows; they are lost", len(batch))
