"""The delivery worker: the claim side of the queued path. It claims due deliveries in
batches, signs each request and hands them to sender lanes (:mod:`hookruntime.queue.lanes`,
in this process or a sender process of its own), which pass every answer on to the
worker's recorder (:mod:`hookruntime.queue.recorder`). What it holds is kept in its
intake (:mod:`hookruntime.queue.intake`), where the outbox hands it new deliveries and
the recorder takes answered ones out.

Stopping (SIGTERM, or closing the runtime) stops claiming, lets in-flight deliveries
finish for up to ``grace`` seconds, then gives the rest back to the queue.
"""

from __future__ import annotations

import logging
import time

import anyio
from anyio.abc import TaskStatus

from ..http import HttpClient
from ..profiles import RetryPolicy
from ..store.engine import Database
from ..targets import Directory, Target
from .claim import Claimed, claim, release
from .heartbeat import Heartbeat
from .intake import Intake
from .lanes import Lanes, Request
from .recorder import Recorder
from .sender_link import RemoteLanes, SenderSettings
from .settings import WorkerSettings
from .wake import Wakeup, listen, watch_sqlite

__all__ = ["Worker", "WorkerSettings"]

log = logging.getLogger("hookruntime.worker")


class Worker:
    """Claims as much as its lanes can use (``concurrency`` plus a few batches) into its
    ``intake``, signs each request and hands them to the lanes; its recorder writes what
    they came to. Without an ``intake``, it makes its own (one no outbox hands to)."""

    def __init__(
        self,
        database: Database,
        directory: Directory,
        client: HttpClient,
        wakeup: Wakeup,
        settings: WorkerSettings,
        intake: Intake | None = None,
    ) -> None:
        self._intake = intake = Intake(wakeup, settings) if intake is None else intake
        self.id = intake.id
        self._db = database
        self._heartbeat = Heartbeat(database, self.id, time.time())
        self._directory = directory
        self._wakeup = wakeup
        self._settings = settings
        self._recorder = Recorder(
            database,
            intake,
            directory,
            wakeup,
            health=settings.health,
            observer=settings.observer,
            batch=settings.batch,
        )
        self._lanes: Lanes | RemoteLanes
        if settings.sender_process:
            sender = SenderSettings(
                concurrency=settings.concurrency,
                cap=settings.cap,
                # Its own grace ends first, so that its last outcomes still arrive.
                grace=max(settings.grace - 1.0, 0.0),
                allow_private=client.allow_private,
                client_limit=client.limit,
                log_level=log.getEffectiveLevel(),
                http_client=settings.http_client,
            )
            self._lanes = RemoteLanes(sender, self._recorder.done, intake.unrecorded)
        else:
            self._lanes = Lanes(
                client,
                concurrency=settings.concurrency,
                cap=settings.cap,
                done=self._recorder.done,
                unrecorded=intake.unrecorded,
            )
        self._quiet: frozenset[str] = frozenset()
        self._quiet_until = 0.0
        #: Claims made, and those that found nothing (a wake-up that was not needed).
        self.claims = 0
        self.empty_claims = 0

    @property
    def sender_pid(self) -> int | None:
        """The sender process's id, while one runs (``sender_process=True``)."""
        return self._lanes.pid if isinstance(self._lanes, RemoteLanes) else None

    @property
    def delivered(self) -> int:
        """Deliveries this worker recorded as delivered."""
        return self._recorder.delivered

    @property
    def in_flight(self) -> dict[str, int]:
        """Deliveries claimed and not yet finished, per registration (for metrics)."""
        return self._intake.outstanding

    def stop(self) -> None:
        self._intake.stop()

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
            outer.start_soon(self._recorder.run)
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
                    await self._recorder.write_pending()
                    await release(self._db, list(self._intake.claimed.values()), time.time())
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
        self._intake.close()
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

    def _commit_seen(self) -> None:
        # Only an idle worker: a busy one's own result writes would otherwise wake it
        # into an empty claim after each of them; it looks again when its work ends.
        if not self._intake.claimed:
            self._wakeup.notify()

    async def _claim_loop(self) -> None:
        settings = self._settings
        intake = self._intake
        while not intake.stopping:
            free = intake.free()
            if free < settings.batch // 2:
                await intake.room_made()
                continue
            saturated = intake.saturated()
            quiet = self._quiet_until - time.time()
            if saturated and quiet > 0 and self._quiet.issubset(saturated):
                # A claim passing over these found nothing else due, and each such claim
                # walks their whole backlog: look again after the poll interval, or as
                # soon as one of them drains (the lane freeing it wakes this loop).
                await self._wakeup.wait(min(quiet, intake.dues.wait()))
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
                await self._wakeup.wait(min(settings.poll, intake.dues.wait(claimed_at)))
                continue
            intake.add(batch)

    async def _dispatch(self) -> None:
        while True:
            items = await self._intake.incoming()
            try:
                requests = await self._sign(items)
            except Exception:
                log.exception("could not look up targets; %d leases will expire", len(items))
                for item in items:
                    self._intake.finish(item)
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
                self._intake.finish(item)
                continue
            target, policy, timeout = found
            try:
                signed = target.request(item.topic, item.event_id, None, raw=item.payload.encode())
            except Exception:
                log.exception("could not sign delivery %s; its lease will expire", item.id)
                self._intake.finish(item)
                continue
            key = self._intake.send(item, policy, target.max_attempts)
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
                self._db, ((self._intake.sent[r.key][0], r) for r in requests)
            )
        return requests
