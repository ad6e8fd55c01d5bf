"""The delivery worker: claim due deliveries in batches, send them concurrently (at most
``registration_concurrency`` per registration, so one slow receiver cannot starve the
rest), decide, and record results in batches.

Stopping (SIGTERM, or closing the runtime) stops claiming, lets in-flight deliveries
finish for up to ``grace`` seconds, then gives the rest back to the queue.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio
from anyio.abc import TaskStatus

from ..errors import ConnectError, HookRuntimeError, RequestTimeout, ResponseTooLarge
from ..http import HttpClient
from ..ids import new_id
from ..store.engine import Database
from ..targets import Directory
from .claim import Claimed, claim, release
from .policy import Decision, Result, decide, parse_retry_after
from .records import Health, Record, write_records
from .wake import Wakeup, listen

__all__ = ["Worker", "WorkerSettings"]

log = logging.getLogger("hookruntime.worker")
_RESPONSE_EXCERPT = 1024
_RESPONSE_CAP = 64 * 1024


@dataclass(frozen=True)
class WorkerSettings:
    concurrency: int = 128
    registration_concurrency: int = 64
    batch: int = 256
    lease: float = 60.0
    poll: float = 1.0
    grace: float = 30.0
    health: Health = field(default_factory=Health)


Disabled = Callable[[str, str, dict[str, object]], Awaitable[None]]


class Worker:
    """Claims into a queue that ``concurrency`` long-lived sender lanes drain; a lane
    whose next delivery belongs to a registration at its cap parks it, and the lane
    that frees that registration's slot sends it next. (Long-lived lanes, not a task
    per delivery: measured here, a task per request cut throughput by a third.)"""

    def __init__(
        self,
        database: Database,
        directory: Directory,
        client: HttpClient,
        wakeup: Wakeup,
        settings: WorkerSettings,
        on_disabled: Disabled,
    ) -> None:
        self.id = f"{socket.gethostname()}:{os.getpid()}:{new_id('w')[-6:]}"
        self._db = database
        self._directory = directory
        self._client = client
        self._wakeup = wakeup
        self._settings = settings
        self._on_disabled = on_disabled
        self._claimed: dict[str, Claimed] = {}
        self._sending: defaultdict[str, int] = defaultdict(int)
        self._parked: defaultdict[str, deque[Claimed]] = defaultdict(deque)
        self._ready: deque[Claimed] = deque()
        self._idle: deque[anyio.Event] = deque()
        self._closed = False
        self._room = anyio.Event()
        self._records: list[Record] = []
        self._flush = anyio.Event()
        self._next_due = math.inf
        self._quiet: frozenset[str] = frozenset()
        self._quiet_until = 0.0
        self._stopping = False
        self.delivered = 0

    @property
    def lease(self) -> float:
        return self._settings.lease

    @property
    def _ceiling(self) -> int:
        # Up to two batches beyond what the lanes hold, so they never wait on a claim.
        return self._settings.concurrency + 2 * self._settings.batch

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
        for item in items:
            self._claimed[item.id] = item
        self._ready.extend(items)
        for _ in range(min(len(items), len(self._idle))):
            self._idle.popleft().set()

    def stop(self) -> None:
        self._stopping = True
        self._wakeup.notify()
        self._room.set()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        settings = self._settings
        async with anyio.create_task_group() as outer:
            outer.start_soon(self._writer)
            if self._db.dialect == "postgresql":
                outer.start_soon(listen, self._db, self._wakeup)
            task_status.started()
            try:
                async with anyio.create_task_group() as lanes:
                    for _ in range(settings.concurrency):
                        lanes.start_soon(self._lane)
                    await self._claim_loop()
                    # Stopping: unstarted work goes back at once; sends under way get
                    # ``grace`` seconds to finish.
                    self._close()
                    with anyio.move_on_after(settings.grace):
                        while any(self._sending.values()):
                            self._room = anyio.Event()
                            await self._room.wait()
                    lanes.cancel_scope.cancel()
            finally:
                with anyio.CancelScope(shield=True):
                    await self._write_pending()
                    await release(self._db, list(self._claimed), time.time())
                self._close()
                outer.cancel_scope.cancel()

    def _close(self) -> None:
        self._closed = True
        while self._idle:
            self._idle.popleft().set()

    async def _claim_loop(self) -> None:
        settings = self._settings
        cap = settings.registration_concurrency
        while not self._stopping:
            free = self._ceiling - len(self._claimed)
            if free < settings.batch // 2:
                self._room = anyio.Event()
                await self._room.wait()
                continue
            # Registrations with a full round of work already waiting get no more yet.
            saturated = [rid for rid, parked in self._parked.items() if len(parked) >= cap]
            quiet = self._quiet_until - time.time()
            if saturated and quiet > 0 and self._quiet.issubset(saturated):
                # A claim passing over these found nothing else due, and each such claim
                # walks their whole backlog: look again after the poll interval, or as
                # soon as one of them drains (the lane freeing it wakes this loop).
                await self._wakeup.wait(min(quiet, self._next_due - time.time()))
                continue
            try:
                batch = await claim(
                    self._db,
                    self.id,
                    min(free, settings.batch),
                    time.time(),
                    settings.lease,
                    saturated,
                )
            except Exception:
                log.exception("claim failed; retrying in %.1f s", settings.poll)
                await anyio.sleep(settings.poll)
                continue
            if not batch:
                if saturated:
                    self._quiet = frozenset(saturated)
                    self._quiet_until = time.time() + settings.poll
                # Sleep until woken (an emit, a retry by hand), until a retry this worker
                # scheduled falls due, or the poll interval passes.
                await self._wakeup.wait(min(settings.poll, self._next_due - time.time()))
                if self._next_due <= time.time():
                    self._next_due = math.inf
                continue
            self._queue(batch)

    async def _lane(self) -> None:
        # A plain deque, not a memory stream: taking a ready item must not cost a trip
        # through the event loop (measured: a stream's checkpoint per item cost ~20 %).
        cap = self._settings.registration_concurrency
        ready = self._ready
        while not self._closed:
            if not ready:
                wake = anyio.Event()
                self._idle.append(wake)
                await wake.wait()
                continue
            item: Claimed | None = ready.popleft()
            while item is not None and not self._stopping:
                rid = item.registration_id
                if self._sending[rid] >= cap:
                    self._parked[rid].append(item)
                    break
                self._sending[rid] += 1
                try:
                    await self._deliver(item)
                finally:
                    self._sending[rid] -= 1
                parked = self._parked.get(rid)
                item = parked.popleft() if parked else None
                if parked is not None and not parked:
                    del self._parked[rid]
                if parked is not None and len(parked) == cap // 2:
                    # Half a round left: claim more of its work before the lanes run dry.
                    self._wakeup.notify()

    async def _deliver(self, item: Claimed) -> None:
        finished = False
        try:
            record = await self._attempt(item)
            finished = True
            if record is not None:
                self._records.append(record)
                if len(self._records) >= self._settings.batch:
                    self._flush.set()
        except anyio.get_cancelled_exc_class():
            raise
        except Exception:
            log.exception("delivery %s failed unexpectedly; its lease will expire", item.id)
            finished = True
        finally:
            # Not another copy of it, claimed again after this one's lease ran out.
            if finished and self._claimed.get(item.id) is item:
                del self._claimed[item.id]
            # Wake the claim loop only when a claim is worth making (or to finish stopping).
            if self._stopping or self._ceiling - len(self._claimed) >= self._settings.batch // 2:
                self._room.set()

    async def _attempt(self, item: Claimed) -> Record | None:
        target = await self._directory.target(item.registration_id)
        if target is None:  # deleted meanwhile: its deliveries go with it
            return None
        policy = target.retry
        number = item.attempts + 1
        raw = item.payload.encode()
        timeout = min(policy.timeout, max(self._settings.lease - 5.0, 1.0))
        if item.lease_until - time.time() < timeout:
            # Held too long behind its registration's cap: the lease could run out during
            # the request and another claim send it too. It lapses and is claimed afresh.
            log.info("delivery %s waited out its lease; it will be claimed again", item.id)
            return None
        response_text = None
        request = target.request(item.topic, item.event_id, None, raw=raw)
        started = time.perf_counter()
        try:
            response = await self._client.post(
                target.url,
                request.headers,
                request.body,
                timeout=timeout,
                max_body=_RESPONSE_CAP,
            )
        except (RequestTimeout, ConnectError, ResponseTooLarge) as exc:
            result = Result(None, str(exc))
        except HookRuntimeError as exc:
            result = Result(None, f"{type(exc).__name__}: {exc}")
        else:
            now = time.time()
            result = Result(
                response.status,
                None
                if 200 <= response.status < 300
                else f"receiver answered HTTP {response.status}",
                parse_retry_after(response.headers.get("Retry-After"), now),
            )
            response_text = response.body[:_RESPONSE_EXCERPT].decode("utf-8", "replace")
        latency = time.perf_counter() - started
        now = time.time()
        decision: Decision = decide(number, result, policy, now, max_attempts=target.max_attempts)
        return Record(
            item.id,
            item.event_id,
            item.registration_id,
            item.org_id,
            item.topic,
            number,
            decision,
            result.status,
            result.error,
            latency * 1000,
            response_text,
            now,
        )

    async def _writer(self) -> None:
        while True:
            with anyio.move_on_after(0.02):
                await self._flush.wait()
            self._flush = anyio.Event()
            await self._write_pending()

    async def _write_pending(self) -> None:
        if not self._records:
            return
        batch, self._records = self._records, []
        retries = (r.decision.next_at for r in batch if r.decision.next_at is not None)
        due = min(retries, default=math.inf)
        try:
            # Shielded: a result taken off the list must reach the database even when
            # the worker is being cancelled, or its delivery would be sent twice.
            with anyio.CancelScope(shield=True):
                orgs = await write_records(
                    self._db, batch, self._settings.health, self._on_disabled
                )
        except Exception:
            # Not recorded: the leases expire and the deliveries are attempted again.
            log.exception("could not record %d results; they will be redone", len(batch))
            return
        self.delivered += sum(r.decision.status == "delivered" for r in batch)
        if due < self._next_due:
            # A retry falls due before the claim loop would next look: wake it to sleep
            # until then (it may be sleeping out the whole poll interval).
            self._next_due = due
            self._wakeup.notify()
        for org in orgs:
            self._directory.invalidate(org)
