"""The delivery worker: claim due deliveries in batches, hand them to sender lanes
(:mod:`hookruntime.queue.lanes`, in this process or a sender process of its own), and
record what the attempts came to in batches.

Stopping (SIGTERM, or closing the runtime) stops claiming, lets in-flight deliveries
finish for up to ``grace`` seconds, then gives the rest back to the queue.
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import time
from collections import defaultdict
from dataclasses import dataclass, field

import anyio
from anyio.abc import TaskStatus

from ..http import HttpClient
from ..ids import new_id
from ..observe import Observer
from ..profiles import RetryPolicy
from ..store.engine import Database
from ..targets import Directory, Target
from .claim import Claimed, claim, release
from .heartbeat import Heartbeat
from .lanes import Lanes, Request, SendResult
from .policy import Result, decide, parse_retry_after
from .records import DisablePolicy, Record, Written, write_records
from .sender_link import RemoteLanes, SenderSettings
from .wake import Dues, Wakeup, listen, watch_sqlite

__all__ = ["Worker", "WorkerSettings"]

log = logging.getLogger("hookruntime.worker")

#: How long a result may wait for others to share its write: a worker killed loses
#: (and will repeat) only the results of about this long, besides what is in flight.
GATHER = 0.005


@dataclass(frozen=True)
class WorkerSettings:
    concurrency: int = 128
    registration_concurrency: int = 64
    batch: int = 256
    lease: float = 60.0
    poll: float = 1.0
    grace: float = 30.0
    #: Seconds between heartbeats, and after how long without one a worker's deliveries
    #: are taken back (:mod:`hookruntime.queue.heartbeat`).
    heartbeat: float = 1.0
    stale: float = 5.0
    health: DisablePolicy = field(default_factory=DisablePolicy)
    #: Send from a process of its own (:mod:`hookruntime.queue.sender_link`).
    sender_process: bool = False
    observer: Observer = field(default_factory=Observer)


class Worker:
    """Claims as much as its lanes can use (``concurrency`` plus a few batches), signs
    each request, hands them to the lanes, decides what each outcome means and writes
    the results; a registration with three rounds of its cap claimed and unfinished gets
    no more until it drains, so a slow one cannot fill the worker."""

    def __init__(
        self,
        database: Database,
        directory: Directory,
        client: HttpClient,
        wakeup: Wakeup,
        settings: WorkerSettings,
    ) -> None:
        self.id = f"{socket.gethostname()}:{os.getpid()}:{new_id('w')[-6:]}"
        self._db = database
        self._heartbeat = Heartbeat(database, self.id, time.time())
        self._directory = directory
        self._wakeup = wakeup
        self._settings = settings
        self._claimed: dict[str, Claimed] = {}
        # Claimed and not yet given back by the lanes, per registration; at three rounds
        # of its cap (one sending, two waiting or on their way) it gets no more for now.
        self._outstanding: defaultdict[str, int] = defaultdict(int)
        cap = settings.registration_concurrency
        self._saturation = 3 * cap
        self._lanes: Lanes | RemoteLanes
        if settings.sender_process:
            sender = SenderSettings(
                concurrency=settings.concurrency,
                cap=cap,
                # Its own grace ends first, so that its last outcomes still arrive.
                grace=max(settings.grace - 1.0, 0.0),
                allow_private=client.allow_private,
                client_limit=client.limit,
                log_level=log.getEffectiveLevel(),
            )
            self._lanes = RemoteLanes(sender, self._finished)
        else:
            self._lanes = Lanes(
                client,
                concurrency=settings.concurrency,
                cap=cap,
                done=self._finished,
                unrecorded=settings.concurrency,
            )
        # Two batches ahead of the lanes; four for a sender process, whose work passes
        # more hands on its way, so the lanes never wait for it.
        self._ahead = 4 if settings.sender_process else 2
        # Claimed, waiting for their targets to be looked up and their requests signed.
        self._incoming: list[Claimed] = []
        self._arrived = anyio.Event()
        # Handed to the lanes: what deciding its outcome needs, by request key.
        self._sent: dict[int, tuple[Claimed, RetryPolicy, int | None]] = {}
        self._keys = itertools.count()
        self._closed = False
        # Set when a claim is worth making again (room() is what the outbox asks).
        self._has_room = anyio.Event()
        self._records: list[Record] = []
        self._flush = anyio.Event()
        # Retries this worker scheduled, soonest first: the claim loop sleeps until the
        # first of them (or the poll), whatever it held when they were written.
        self._dues = Dues()
        self._quiet: frozenset[str] = frozenset()
        self._quiet_until = 0.0
        self._stopping = False
        self.delivered = 0
        #: Claims made, and those that found nothing (a wake-up that was not needed).
        self.claims = 0
        self.empty_claims = 0

    @property
    def sender_pid(self) -> int | None:
        """The sender process's id, while one runs (``sender_process=True``)."""
        return self._lanes.pid if isinstance(self._lanes, RemoteLanes) else None

    @property
    def lease(self) -> float:
        return self._settings.lease

    @property
    def in_flight(self) -> dict[str, int]:
        """Deliveries claimed and not yet finished, per registration (for metrics)."""
        return self._outstanding

    @property
    def _ceiling(self) -> int:
        # Batches beyond what the lanes hold, so they never wait on a claim.
        return self._settings.concurrency + self._ahead * self._settings.batch

    def room(self) -> int:
        """How many more deliveries this worker would take now (the outbox asks)."""
        if self._stopping:
            return 0
        return max(0, self._ceiling - len(self._claimed))

    def accept(self, items: list[Claimed]) -> None:
        """Take deliveries the outbox wrote as claimed by this worker."""
        if self._closed:
            return  # stopping: their leases lapse and they are redone
        self._queue(items)

    def _queue(self, items: list[Claimed]) -> None:
        claimed, outstanding = self._claimed, self._outstanding
        for item in items:
            claimed[item.id] = item
            outstanding[item.registration_id] += 1
        self._incoming.extend(items)
        self._arrived.set()

    async def _dispatch(self) -> None:
        while True:
            await self._arrived.wait()
            self._arrived = anyio.Event()
            items, self._incoming = self._incoming, []
            try:
                requests = await self._sign(items)
            except Exception:
                log.exception("could not look up targets; %d leases will expire", len(items))
                for item in items:
                    self._finished_item(item, None)
                continue
            self._lanes.put(requests)

    async def _sign(self, items: list[Claimed]) -> list[Request]:
        """Each delivery's request, signed now (it is sent within ``lease - timeout``
        seconds or not at all, well inside any profile's timestamp tolerance)."""
        longest = max(self._settings.lease - 5.0, 1.0)
        targets: dict[str, tuple[Target, RetryPolicy, float] | None] = {}
        for rid in {item.registration_id for item in items}:
            target = await self._directory.target(rid)
            if target is None:
                targets[rid] = None
            else:
                policy = target.retry
                targets[rid] = (target, policy, min(policy.timeout, longest))
        requests = []
        for item in items:
            found = targets[item.registration_id]
            if found is None:  # deleted meanwhile: its deliveries go with it
                self._finished_item(item, None)
                continue
            target, policy, timeout = found
            try:
                signed = target.request(item.topic, item.event_id, None, raw=item.payload.encode())
            except Exception:
                log.exception("could not sign delivery %s; its lease will expire", item.id)
                self._finished_item(item, None)
                continue
            key = next(self._keys)
            self._sent[key] = (item, policy, target.max_attempts)
            requests.append(
                Request(
                    key,
                    item.id,
                    item.registration_id,
                    target.url,
                    signed.headers,
                    signed.body,
                    timeout,
                    item.lease_until - timeout,
                )
            )
        if (tracing := self._settings.observer.tracing) is not None:
            requests = await tracing.sending(
                self._db, ((self._sent[r.key][0], r) for r in requests)
            )
        return requests

    def _commit_seen(self) -> None:
        # Only an idle worker: a busy one's own result writes would otherwise wake it
        # into an empty claim after each of them; it looks again when its work ends.
        if not self._claimed:
            self._wakeup.notify()

    def stop(self) -> None:
        self._stopping = True
        self._wakeup.notify()
        self._has_room.set()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        settings = self._settings
        async with anyio.create_task_group() as outer:
            try:
                taken = await self._heartbeat.start(time.time())
                if taken:
                    log.warning("took back %d deliveries of workers no longer alive", taken)
            except Exception:
                log.exception("first heartbeat failed; the next ones will retry")
            outer.start_soon(self._beat)
            outer.start_soon(self._writer)
            if self._db.dialect == "postgresql":
                outer.start_soon(listen, self._db, self._wakeup)
            elif self._db.path is not None:
                outer.start_soon(watch_sqlite, str(self._db.path), self._commit_seen)
            try:
                async with anyio.create_task_group() as lanes:
                    finished = anyio.Event()
                    await lanes.start(self._run_lanes, finished)
                    lanes.start_soon(self._dispatch)
                    task_status.started()
                    await self._claim_loop()
                    # Stopping: unstarted work goes back at once; sends under way get
                    # ``grace`` seconds to finish.
                    self._close()
                    with anyio.move_on_after(settings.grace):
                        await finished.wait()
                    lanes.cancel_scope.cancel()
            finally:
                with anyio.CancelScope(shield=True):
                    await self._write_pending()
                    await release(self._db, list(self._claimed.values()), time.time())
                    try:
                        await self._heartbeat.stop()
                    except Exception:
                        log.exception("could not remove this worker's heartbeat")
                self._close()
                outer.cancel_scope.cancel()

    async def _run_lanes(
        self, finished: anyio.Event, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        try:
            await self._lanes.run(task_status=task_status)
        finally:
            finished.set()

    def _close(self) -> None:
        self._closed = True
        self._lanes.close()

    async def _beat(self) -> None:
        settings = self._settings
        while True:
            await anyio.sleep(settings.heartbeat)
            try:
                taken = await self._heartbeat.beat(
                    time.time(), settings.stale, 2.5 * settings.heartbeat
                )
            except Exception:
                log.exception("heartbeat failed; retrying in %.1f s", settings.heartbeat)
                continue
            if taken:
                log.warning("took back %d deliveries of a worker whose heartbeat stopped", taken)
                self._wakeup.notify()

    async def _claim_loop(self) -> None:
        settings = self._settings
        while not self._stopping:
            free = self._ceiling - len(self._claimed)
            if free < settings.batch // 2:
                self._has_room = anyio.Event()
                await self._has_room.wait()
                continue
            saturated = [rid for rid, n in self._outstanding.items() if n >= self._saturation]
            quiet = self._quiet_until - time.time()
            if saturated and quiet > 0 and self._quiet.issubset(saturated):
                # A claim passing over these found nothing else due, and each such claim
                # walks their whole backlog: look again after the poll interval, or as
                # soon as one of them drains (the lane freeing it wakes this loop).
                await self._wakeup.wait(min(quiet, self._dues.wait()))
                continue
            claimed_at = time.time()
            try:
                batch = await claim(
                    self._db,
                    self.id,
                    min(free, settings.batch),
                    claimed_at,
                    settings.lease,
                    saturated,
                )
            except Exception:
                log.exception("claim failed; retrying in %.1f s", settings.poll)
                await anyio.sleep(settings.poll)
                continue
            self.claims += 1
            if not batch:
                self.empty_claims += 1
                if saturated:
                    self._quiet = frozenset(saturated)
                    self._quiet_until = time.time() + settings.poll
                # Sleep until woken (an emit, a retry by hand), until a retry this worker
                # scheduled falls due, or the poll interval passes.
                await self._wakeup.wait(min(settings.poll, self._dues.wait(claimed_at)))
                continue
            self._queue(batch)

    def _finished(self, key: int, outcome: SendResult | None) -> None:
        item, policy, max_attempts = self._sent.pop(key)
        record = None if outcome is None else _record(item, policy, max_attempts, outcome)
        self._settings.observer.attempted(item, record)
        self._finished_item(item, record)

    def _finished_item(self, item: Claimed, record: Record | None) -> None:
        if record is not None:
            self._records.append(record)
            if not self._flush.is_set():
                self._flush.set()
        # Not another copy of it, claimed again after this one's lease ran out.
        if self._claimed.get(item.id) is item:
            del self._claimed[item.id]
        rid = item.registration_id
        left = self._outstanding[rid] - 1
        if left:
            self._outstanding[rid] = left
        else:
            del self._outstanding[rid]
        if left == self._saturation - 1:
            # No longer saturated: claim more of its work now, not when its lanes run dry
            # (outcomes arrive in batches, and a claim takes a while to reach the lanes).
            self._wakeup.notify()
        # Wake the claim loop only when a claim is worth making (or to finish stopping).
        if self._stopping or self._ceiling - len(self._claimed) >= self._settings.batch // 2:
            self._has_room.set()

    async def _writer(self) -> None:
        # A result is written within a few ms: a killed worker repeats what was in
        # flight, not a backlog of results it had and had not written.
        while True:
            await self._flush.wait()
            self._flush = anyio.Event()
            if len(self._records) < self._settings.batch:
                await anyio.sleep(GATHER)
            await self._write_pending()

    async def _write(self, batch: list[Record]) -> Written:
        # Shielded: a result taken off the list must reach the database even when the
        # worker is being cancelled, or its delivery would be sent twice.
        with anyio.CancelScope(shield=True):
            written = await write_records(self._db, batch, self._settings.health)
        return written

    async def _write_pending(self) -> None:
        if not self._records:
            return
        batch, self._records = self._records, []
        try:
            written = await self._write(batch)
        except Exception:
            log.exception("could not record %d results at once", len(batch))
            written = await self._write_each(batch) if len(batch) > 1 else Written([], [])
        self._lanes.recorded(len(batch))
        self.delivered += sum(r.decision.status == "delivered" for r in written.applied)
        self._settings.observer.recorded(written.applied)
        if self._dues.add(r.decision.next_at for r in written.applied):
            # A retry falls due before the claim loop would next look: wake it to sleep
            # until then (it may be sleeping out the whole poll interval).
            self._wakeup.notify()
        observer = self._settings.observer
        for disabled in written.disabled:
            self._directory.invalidate(disabled.org)
            observer.disabled(disabled.org, disabled.registration_id, disabled.reason)
        if any(disabled.notices for disabled in written.disabled):
            self._wakeup.notify()  # its notices wait for a claim, maybe this worker's

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


def _record(
    item: Claimed, policy: RetryPolicy, max_attempts: int | None, outcome: SendResult
) -> Record:
    status = outcome.status
    if status is None:
        result = Result(None, outcome.error)
    else:
        error = None if 200 <= status < 300 else f"receiver answered HTTP {status}"
        result = Result(status, error, parse_retry_after(outcome.retry_after, outcome.at))
    number = item.attempts + 1
    return Record(
        item.id,
        item.event_id,
        item.registration_id,
        item.org_id,
        item.topic,
        number,
        decide(number, result, policy, outcome.at, max_attempts=max_attempts),
        status,
        result.error,
        outcome.latency * 1000,
        outcome.response,
        outcome.at,
        item.lease_token,
        outcome.headers,
    )
