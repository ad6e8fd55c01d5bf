"""The recorder: what each answer from the lanes comes to, written in batches.

The lanes pass every request they took up to :meth:`Recorder.done`: it decides what the
outcome means (:func:`hookruntime.queue.policy.next_state`), takes the delivery out of the
intake (which tells the claim loop it has room), and gathers the result for
:func:`hookruntime.queue.records.write_records`. A result is written within
:data:`GATHER` seconds, with whatever others came back meanwhile, and once taken off the
list it is written even while the worker is being cancelled.
"""

from __future__ import annotations

import logging

import anyio

from ..observe import Observer
from ..profiles import RetryPolicy
from ..store.engine import Database
from ..targets import Directory
from .claim import Claimed
from .intake import Intake
from .lanes import SendResult
from .policy import next_state, parse_retry_after
from .records import DisablePolicy, Record, Written, write_records
from .wake import Wakeup

__all__ = ["GATHER", "Recorder", "record_of"]

log = logging.getLogger("hookruntime.worker")

#: How long a result may wait for others to share its write: a worker killed loses
#: (and will repeat) only the results of about this long, besides what is in flight.
GATHER = 0.005


class Recorder:
    """Decides and writes the results of one worker's requests, ``batch`` at most in one
    transaction; a registration disabled by them is logged and counted through
    ``observer``, and its org's cached targets dropped from ``directory``."""

    def __init__(
        self,
        database: Database,
        intake: Intake,
        directory: Directory,
        wakeup: Wakeup,
        *,
        health: DisablePolicy,
        observer: Observer,
        batch: int,
    ) -> None:
        self._db = database
        self._intake = intake
        self._directory = directory
        self._wakeup = wakeup
        self._health = health
        self._observer = observer
        self._batch = batch
        self._records: list[Record] = []
        self._flush = anyio.Event()
        #: Deliveries this worker recorded as delivered.
        self.delivered = 0

    def done(self, key: int, outcome: SendResult | None) -> None:
        """The lanes' answer for the request of ``key`` (None: it was not sent)."""
        item, policy, max_attempts = self._intake.answered(key)
        record = None if outcome is None else record_of(item, policy, max_attempts, outcome)
        self._observer.attempted(item, record)
        if record is not None:
            self._records.append(record)
            if not self._flush.is_set():
                self._flush.set()
        self._intake.finish(item)

    async def run(self) -> None:
        # A result is written within a few ms: a killed worker repeats what was in
        # flight, not a backlog of results it had and had not written.
        while True:
            await self._flush.wait()
            self._flush = anyio.Event()
            if len(self._records) < self._batch:
                await anyio.sleep(GATHER)
            await self.write_pending()

    async def write_pending(self) -> None:
        """Write what is gathered now (the worker's last act before it releases)."""
        if not self._records:
            return
        batch, self._records = self._records, []
        try:
            written = await self._write(batch)
        except Exception:
            log.exception("could not record %d results at once", len(batch))
            written = await self._write_each(batch) if len(batch) > 1 else Written([], [])
        self._intake.unrecorded.recorded(len(batch))
        self.delivered += sum(r.next_state.status == "delivered" for r in written.applied)
        self._observer.recorded(written.applied)
        if self._intake.dues.add(r.next_state.next_at for r in written.applied):
            # A retry falls due before the claim loop would next look: wake it to sleep
            # until then (it may be sleeping out the whole poll interval).
            self._wakeup.notify()
        for disabled in written.disabled:
            self._directory.invalidate(disabled.org)
            self._observer.disabled(disabled.org, disabled.registration_id, disabled.reason)
        if any(disabled.notices for disabled in written.disabled):
            self._wakeup.notify()  # its notices wait for a claim, maybe this worker's

    async def _write(self, batch: list[Record]) -> Written:
        # Shielded: a result taken off the list must reach the database even when the
        # worker is being cancelled, or its delivery would be sent twice.
        with anyio.CancelScope(shield=True):
            written = await write_records(self._db, batch, self._health)
        return written

    async def _write_each(self, batch: list[Record]) -> Written:
        # One bad result must not take the others with it (they were sent, and would all
        # be sent again): each on its own; one that still fails is redone after its lease.
        written = Written([], [])
        for record in batch:
            try:
                one = await self._write([record])
            except Exception:
                log.exception("could not record delivery %s; it will be redone", record.delivery_id)
                continue
            written.applied.extend(one.applied)
            written.disabled.extend(one.disabled)
        return written


def record_of(
    item: Claimed, policy: RetryPolicy, max_attempts: int | None, outcome: SendResult
) -> Record:
    """What ``outcome`` means for ``item``'s delivery: its next state and its log line."""
    status = outcome.status
    if status is None:
        error, retry_after = outcome.error, None
    else:
        error = None if 200 <= status < 300 else f"receiver answered HTTP {status}"
        retry_after = parse_retry_after(outcome.retry_after, outcome.at)
    number = item.attempts + 1
    return Record(
        item.id,
        item.event_id,
        item.registration_id,
        item.org_id,
        item.topic,
        number,
        next_state(number, status, retry_after, policy, outcome.at, max_attempts=max_attempts),
        status,
        error,
        outcome.latency * 1000,
        outcome.response,
        outcome.at,
        item.lease_token,
        outcome.headers,
    )
