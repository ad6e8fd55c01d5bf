"""Sender lanes: send signed requests concurrently, at most ``cap`` at a time per
registration (so one slow receiver cannot starve the rest), and report what came back.
They run in the worker's process, or in a sender process of their own
(:mod:`hookruntime.queue.sender_link`); either way every request a lane takes up is passed
on through ``done`` (to the recorder, :mod:`hookruntime.queue.recorder`), with its
outcome or None when it was not sent. Requests not yet taken up when the lanes close are
not passed on: their leases lapse and they are redone.

The worker signs before and the recorder decides after, so that a lane spends no more
per request than the bare client (the README's "Measured design choices" has the
numbers).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass

import anyio
from anyio.abc import TaskStatus

from ..errors import ConnectError, HookRuntimeError, RequestTimeout, ResponseTooLarge
from ..http import HttpClient
from ..store.attempts import headers_excerpt

__all__ = ["Done", "Lanes", "Request", "SendResult", "Unrecorded"]

log = logging.getLogger("hookruntime.worker")
_RESPONSE_EXCERPT = 1024
_RESPONSE_CAP = 64 * 1024


@dataclass(frozen=True, slots=True)
class Request:
    """One attempt, signed. ``key`` is the worker's handle on it; ``send_by`` is when it
    becomes too late to start (its lease could run out before the response came)."""

    key: int
    delivery_id: str
    registration_id: str
    url: str
    headers: dict[str, str]
    body: bytes
    timeout: float
    send_by: float


@dataclass(frozen=True, slots=True)
class SendResult:
    """What one request came to: a status, or an error when there was no response."""

    status: int | None
    error: str | None
    retry_after: str | None
    response: str | None
    latency: float
    at: float
    #: The response's headers, bounded and redacted (:func:`headers_excerpt`).
    headers: str | None = None


Done = Callable[[int, SendResult | None], None]


class Unrecorded:
    """Requests sent whose results are not yet written, kept under ``limit``: a worker
    killed at any moment has sent at most that many deliveries that will be sent again.
    The lanes count each request in as they send it; whoever writes the results counts
    them out (:meth:`recorded`), and :attr:`recorded_total` is what a sender process's
    own count is told."""

    def __init__(self, limit: float = float("inf")) -> None:
        self.limit = limit
        self.count = 0
        self.recorded_total = 0
        self._changed = anyio.Event()

    @property
    def full(self) -> bool:
        return self.count >= self.limit

    def recorded(self, count: int) -> None:
        """``count`` results of requests sent were written (or given up on)."""
        self.count -= count
        self.recorded_total += count
        self._changed.set()

    def release(self) -> None:
        """Wake whoever waits (the lanes are closing)."""
        self._changed.set()

    async def changed(self) -> None:
        """Return on the next :meth:`recorded` or :meth:`release`."""
        if self._changed.is_set():
            self._changed = anyio.Event()
        await self._changed.wait()


class Lanes:
    """``concurrency`` long-lived lanes draining one queue; a lane whose next request
    belongs to a registration at its cap parks it, and the lane that frees that
    registration's slot sends it next. (Long-lived lanes, not a task per request, which
    costs throughput: see the README's "Measured design choices".)

    With ``unrecorded``, a request is started only while it is not full (requests under
    way, or answered and waiting for their result to be written)."""

    def __init__(
        self,
        client: HttpClient,
        *,
        concurrency: int,
        cap: int,
        done: Done,
        unrecorded: Unrecorded | None = None,
    ) -> None:
        self._client = client
        self._concurrency = concurrency
        self._cap = cap
        self._done = done
        self._sending: defaultdict[str, int] = defaultdict(int)
        self._parked: defaultdict[str, deque[Request]] = defaultdict(deque)
        self._ready: deque[Request] = deque()
        self._idle: deque[anyio.Event] = deque()
        self._closed = False
        self._unrecorded = Unrecorded() if unrecorded is None else unrecorded

    def put(self, requests: list[Request]) -> None:
        self._ready.extend(requests)
        for _ in range(min(len(requests), len(self._idle))):
            self._idle.popleft().set()

    def close(self) -> None:
        """Start no more sends; ``run`` returns once those under way have finished.
        Requests not started are not given back: their leases are the worker's."""
        self._closed = True
        self._unrecorded.release()
        while self._idle:
            self._idle.popleft().set()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        async with anyio.create_task_group() as lanes:
            for _ in range(self._concurrency):
                lanes.start_soon(self._lane)
            task_status.started()

    async def _lane(self) -> None:
        # A plain deque, not a memory stream: taking a ready item must not cost a trip
        # through the event loop.
        cap = self._cap
        ready = self._ready
        while not self._closed:
            if not ready:
                wake = anyio.Event()
                self._idle.append(wake)
                await wake.wait()
                continue
            request: Request | None = ready.popleft()
            while request is not None and not self._closed:
                rid = request.registration_id
                if self._sending[rid] >= cap:
                    self._parked[rid].append(request)
                    break
                self._sending[rid] += 1
                try:
                    await self._send(request)
                finally:
                    self._sending[rid] -= 1
                parked = self._parked.get(rid)
                request = parked.popleft() if parked else None
                if parked is not None and not parked:
                    del self._parked[rid]

    async def _send(self, request: Request) -> None:
        outcome = None
        unrecorded = self._unrecorded
        while unrecorded.full and not self._closed:
            await unrecorded.changed()
        if self._closed:
            pass  # stopping: not sent, its lease is given back with the others
        elif time.time() > request.send_by:
            # Held too long behind its registration's cap: the lease could run out during
            # the request and another claim send it too. It lapses and is claimed afresh.
            log.info(
                "delivery %s waited out its lease; it will be claimed again", request.delivery_id
            )
        else:
            unrecorded.count += 1
            try:
                outcome = await self._post(request)
            except anyio.get_cancelled_exc_class():
                raise
            except Exception:
                log.exception(
                    "delivery %s failed unexpectedly; its lease will expire", request.delivery_id
                )
            if outcome is None:
                unrecorded.count -= 1  # no result to record
        self._done(request.key, outcome)

    async def _post(self, request: Request) -> SendResult:
        started = time.perf_counter()
        try:
            response = await self._client.post(
                request.url,
                request.headers,
                request.body,
                timeout=request.timeout,
                max_body=_RESPONSE_CAP,
            )
        except (RequestTimeout, ConnectError, ResponseTooLarge) as exc:
            return _failed(str(exc), started)
        except HookRuntimeError as exc:
            return _failed(f"{type(exc).__name__}: {exc}", started)
        return SendResult(
            status=response.status,
            error=None,
            retry_after=response.headers.get("Retry-After"),
            response=response.body[:_RESPONSE_EXCERPT].decode("utf-8", "replace"),
            latency=time.perf_counter() - started,
            at=time.time(),
            headers=headers_excerpt(response.headers.items()),
        )


def _failed(error: str, started: float) -> SendResult:
    return SendResult(
        status=None,
        error=error,
        retry_after=None,
        response=None,
        latency=time.perf_counter() - started,
        at=time.time(),
    )
