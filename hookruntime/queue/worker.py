"""The delivery worker: claim due deliveries in batches, send them concurrently (at most
``registration_concurrency`` per registration, so one slow receiver cannot starve the
rest), decide, and record results in batches.

Stopping (SIGTERM, or closing the runtime) stops claiming, lets in-flight deliveries
finish for up to ``grace`` seconds, then gives the rest back to the queue.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections import defaultdict
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
    concurrency: int = 256
    registration_concurrency: int = 64
    batch: int = 256
    lease: float = 60.0
    poll: float = 1.0
    grace: float = 30.0
    health: Health = field(default_factory=Health)


Disabled = Callable[[str, str, dict[str, object]], Awaitable[None]]


class Worker:
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
        self._inflight: dict[str, Claimed] = {}
        self._per_registration: defaultdict[str, int] = defaultdict(int)
        self._limiters: dict[str, anyio.CapacityLimiter] = {}
        self._next_due = float("inf")
        self._slot = anyio.Event()
        self._records: list[Record] = []
        self._abandoned: list[str] = []
        self._flush = anyio.Event()
        self._stopping = False
        self.delivered = 0

    def stop(self) -> None:
        self._stopping = True
        self._wakeup.notify()
        self._slot.set()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        async with anyio.create_task_group() as outer:
            outer.start_soon(self._writer)
            if self._db.dialect == "postgresql":
                outer.start_soon(listen, self._db, self._wakeup)
            task_status.started()
            try:
                async with anyio.create_task_group() as deliveries:
                    await self._claim_loop(deliveries)
                    with anyio.move_on_after(self._settings.grace):
                        while self._inflight:
                            self._slot = anyio.Event()
                            await self._slot.wait()
                    deliveries.cancel_scope.cancel()
            finally:
                with anyio.CancelScope(shield=True):
                    await self._write_pending()
                    await release(self._db, [*self._abandoned, *self._inflight], time.time())
                outer.cancel_scope.cancel()

    async def _claim_loop(self, deliveries: anyio.abc.TaskGroup) -> None:
        settings = self._settings
        while not self._stopping:
            free = settings.concurrency - len(self._inflight)
            if free <= 0:
                self._slot = anyio.Event()
                await self._slot.wait()
                continue
            saturated = [
                r
                for r, n in self._per_registration.items()
                if n >= settings.registration_concurrency
            ]
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
                # Sleep until woken (an emit, a retry by hand, a registration back under
                # its cap), until a retry this worker scheduled falls due, or the poll.
                await self._wakeup.wait(min(settings.poll, self._next_due - time.time()))
                if self._next_due <= time.time():
                    self._next_due = float("inf")
                continue
            for item in batch:
                self._inflight[item.id] = item
                self._per_registration[item.registration_id] += 1
                deliveries.start_soon(self._deliver, item)

    async def _deliver(self, item: Claimed) -> None:
        try:
            record = await self._attempt(item)
            if record is not None:
                self._records.append(record)
                if len(self._records) >= self._settings.batch:
                    self._flush.set()
        except anyio.get_cancelled_exc_class():
            self._abandoned.append(item.id)
            raise
        except Exception:
            log.exception("delivery %s failed unexpectedly; its lease will expire", item.id)
        finally:
            del self._inflight[item.id]
            count = self._per_registration[item.registration_id]
            if count == self._settings.registration_concurrency:
                self._wakeup.notify()  # claimable again
            if count == 1:
                del self._per_registration[item.registration_id]
            else:
                self._per_registration[item.registration_id] = count - 1
            self._slot.set()

    async def _attempt(self, item: Claimed) -> Record | None:
        target = await self._directory.target(item.registration_id)
        if target is None:  # deleted meanwhile: its deliveries go with it
            return None
        policy = target.retry
        number = item.attempts + 1
        payload = json.loads(item.payload)
        timeout = min(policy.timeout, max(self._settings.lease - 5.0, 1.0))
        limiter = self._limiters.get(item.registration_id)
        if limiter is None:
            limiter = anyio.CapacityLimiter(self._settings.registration_concurrency)
            self._limiters[item.registration_id] = limiter
        response_text = None
        async with limiter:
            # Rendered here, after any wait for the cap, so that signatures carry the
            # time of sending.
            request = target.request(item.topic, item.event_id, payload)
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
        for record in batch:
            if record.decision.next_at is not None:
                self._next_due = min(self._next_due, record.decision.next_at)
        try:
            orgs = await write_records(self._db, batch, self._settings.health, self._on_disabled)
        except Exception:
            # Not recorded: the leases expire and the deliveries are attempted again.
            log.exception("could not record %d results; they will be redone", len(batch))
            return
        self.delivered += sum(r.decision.status == "delivered" for r in batch)
        for org in orgs:
            self._directory.invalidate(org)
