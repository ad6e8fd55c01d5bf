"""Sender lanes in a process of their own (``sender_process=True``), so that sending and
the rest run on two cores: the worker claims, signs, decides and writes (and runs its
host's emits), its sender process only sends. This module holds the worker's end and
the frames both ends speak; :mod:`hookruntime.queue.sender` is the sender process.

The two speak over a socket pair in frames: a 4-byte length, then a pickle of plain
tuples laid out by :class:`RequestFrame` and :class:`ResultFrame` (pickling the
dataclasses themselves costs ten times as much). Worker to sender: the settings once,
then lists of requests and counts of results written, then ``None`` to close. Sender to
worker: ``"ready"`` once, then lists of ``(key, outcome or None)``, one per turn of its
event loop that finished anything, and an empty list as a heartbeat when nothing
finished for a while. Both ends are this package, started together.

A sender whose worker dies exits at once, quietly. A worker whose sender dies, or
sends nothing past the heartbeat timeout (hung, or stopped), kills it, gives back
what it had handed it (those deliveries are redone when their leases expire, as a
killed worker's are) and starts another; one that dies before it is ready is tried
again with a growing pause.
"""

from __future__ import annotations

import contextlib
import logging
import math
import pickle
import socket
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, NamedTuple

import anyio
from anyio.abc import Process, SocketStream, TaskStatus
from anyio.streams.buffered import BufferedByteReceiveStream

from ..errors import HookRuntimeError
from .lanes import Done, Request, SendResult, Unrecorded

__all__ = ["HEARTBEAT", "PEER_GONE", "RemoteLanes", "SenderSettings", "receive", "send"]

log = logging.getLogger("hookruntime.worker")
_HEADER = struct.Struct(">I")
#: Pause before starting another sender after one that was ready died.
_RESTART_AFTER = 0.25
#: After one died before it was ready: the first pause, doubled each time, up to the last.
_UNREADY_BACKOFF = (0.25, 5.0)
#: Consecutive senders dying before ready that make a worker's start fail.
_UNREADY_LIMIT = 6
#: Python, this package and the HTTP client load in well under this on a busy machine.
_READY_WITHIN = 30.0
#: A sender says something at least this often ...
HEARTBEAT = 0.5
#: ... and one silent this long is hung (or stopped); a busy event loop answers sooner.
_HUNG_AFTER = 5.0
#: What the socket raises on either end when the other process is gone.
PEER_GONE = (
    anyio.EndOfStream,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    ConnectionError,
)
#: ... and on the worker's end, also a sender that never got ready in time.
_SENDER_LOST = (*PEER_GONE, TimeoutError, OSError)
_ENTRY = "from hookruntime.queue.sender import main; main()"


@dataclass(frozen=True)
class SenderSettings:
    concurrency: int
    cap: int
    grace: float
    allow_private: bool
    client_limit: int
    log_level: int = logging.WARNING
    #: The backend the worker's own process would send with (``Settings.http_client``).
    http_client: str = "aiohttp"


async def send(stream: SocketStream, message: object) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    await stream.send(_HEADER.pack(len(data)) + data)


async def receive(reader: BufferedByteReceiveStream, patience: float = math.inf) -> Any:
    """The next frame; raises :class:`anyio.EndOfStream` at end of file and
    :class:`TimeoutError` when a frame does not begin, or end, within ``patience``."""
    try:
        if patience == math.inf:  # the sender's side: no timer per frame
            (size,) = _HEADER.unpack(await reader.receive_exactly(_HEADER.size))
            return pickle.loads(await reader.receive_exactly(size))
        # A timer for each half: one that ran out while this process's own loop was
        # stalled must not cut a frame that arrived meanwhile (measured: it did).
        with anyio.fail_after(patience):
            header = await reader.receive_exactly(_HEADER.size)
        (size,) = _HEADER.unpack(header)
        with anyio.fail_after(patience):
            return pickle.loads(await reader.receive_exactly(size))
    except anyio.IncompleteRead:
        raise anyio.EndOfStream from None


class RequestFrame(NamedTuple):
    """A :class:`~hookruntime.queue.lanes.Request` on the wire, worker to sender."""

    key: int
    delivery_id: str
    registration_id: str
    url: str
    headers: dict[str, str]
    body: bytes
    timeout: float
    send_by: float


class ResultFrame(NamedTuple):
    """An :class:`~hookruntime.queue.lanes.SendResult` on the wire, sender to worker."""

    status: int | None
    error: str | None
    retry_after: str | None
    response: str | None
    latency: float
    at: float
    headers: str | None


# Each end rebuilds the dataclass from a frame's values in the frame's order: checked
# here, once, so that a field added to one and not the other fails at import.
for _frame, _kind in ((RequestFrame, Request), (ResultFrame, SendResult)):
    if _frame._fields != tuple(f.name for f in fields(_kind)):
        raise AssertionError(f"{_frame.__name__} does not match {_kind.__name__}")


def request_frame(r: Request) -> tuple[Any, ...]:
    # Sent as a plain tuple: pickling the NamedTuple itself costs ~4x as much.
    return tuple(
        RequestFrame(
            key=r.key,
            delivery_id=r.delivery_id,
            registration_id=r.registration_id,
            url=r.url,
            headers=r.headers,
            body=r.body,
            timeout=r.timeout,
            send_by=r.send_by,
        )
    )


def result_frame(o: SendResult) -> tuple[Any, ...]:
    return tuple(
        ResultFrame(
            status=o.status,
            error=o.error,
            retry_after=o.retry_after,
            response=o.response,
            latency=o.latency,
            at=o.at,
            headers=o.headers,
        )
    )


class RemoteLanes:
    """The worker's end: takes requests as :class:`~hookruntime.queue.lanes.Lanes` does
    and passes each on through ``done`` when its sender process reports it; tells the
    sender process what ``unrecorded`` counts out, which its own lanes wait for."""

    def __init__(
        self, settings: SenderSettings, done: Done, unrecorded: Unrecorded | None = None
    ) -> None:
        self._settings = settings
        self._done = done
        self._pending: list[Request] = []
        self._more = anyio.Event()
        self._closing = False
        self._given: set[int] = set()
        self._unrecorded = Unrecorded() if unrecorded is None else unrecorded
        self._told = 0
        #: The sender process's id while one runs.
        self.pid: int | None = None

    def put(self, requests: list[Request]) -> None:
        self._pending.extend(requests)
        self._more.set()

    def close(self) -> None:
        self._closing = True
        self._more.set()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run a sender process until closed, starting another whenever one dies or
        hangs; started once the first is ready to send."""
        started = False
        unready = 0

        def ready() -> None:
            nonlocal started
            if not started:
                started = True
                task_status.started()

        while True:
            was_ready = await self._session(ready)
            if self._closing:
                return  # what it did not report stays claimed: the worker releases it
            given, self._given = self._given, set()
            for key in given:
                self._done(key, None)
            if was_ready:
                unready = 0
                pause = _RESTART_AFTER
            else:
                unready += 1
                if not started and unready >= _UNREADY_LIMIT:
                    raise HookRuntimeError(
                        f"the sender process exited before it was ready {unready} times "
                        "in a row (its output is above)"
                    )
                first, most = _UNREADY_BACKOFF
                pause = min(most, first * 2 ** (unready - 1))
            log.error(
                "the sender process %s; the %d deliveries it held are redone when their "
                "leases expire; starting another in %.2f s",
                "stopped answering or exited" if was_ready else "exited before it was ready",
                len(given),
                pause,
            )
            await anyio.sleep(pause)

    async def _session(self, ready: Callable[[], None]) -> bool:
        """One sender process from start to end; whether it became ready."""
        ours, theirs = socket.socketpair()
        try:
            process = await anyio.open_process(
                [sys.executable, "-c", _ENTRY, str(theirs.fileno())],
                stdin=None,
                stdout=None,
                stderr=None,
                pass_fds=(theirs.fileno(),),
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.pid = process.pid
        stream = await SocketStream.from_socket(ours)
        reader = BufferedByteReceiveStream(stream)
        was_ready = False
        try:
            with anyio.fail_after(_READY_WITHIN):
                await send(stream, self._settings)
                await receive(reader)  # "ready"
            was_ready = True
            ready()
            async with anyio.create_task_group() as group:
                group.start_soon(self._forward, stream)
                group.start_soon(self._relay)
                await self._collect(reader)
                group.cancel_scope.cancel()
        except* _SENDER_LOST:
            pass  # dead, hung or never ready: run() says so and starts another
        finally:
            with anyio.CancelScope(shield=True):
                await stream.aclose()
                if not self._closing or not was_ready:
                    # Hung or stopped senders do not see the socket close: kill it.
                    _kill(process)
                # Closing our end makes a live one exit at once.
                with anyio.move_on_after(5):
                    await process.wait()
                if process.returncode is None:
                    process.kill()
                    await process.wait()
            self.pid = None
        return was_ready

    async def _forward(self, stream: SocketStream) -> None:
        while True:
            await self._more.wait()
            self._more = anyio.Event()
            requests, self._pending = self._pending, []
            if requests:
                self._given.update(request.key for request in requests)
                await send(stream, [request_frame(request) for request in requests])
            recorded = self._unrecorded.recorded_total
            if recorded != self._told:
                count, self._told = recorded - self._told, recorded
                await send(stream, count)
            if self._closing and not self._pending:
                await send(stream, None)
                return

    async def _relay(self) -> None:
        # Results written are news for the sender process: one frame carries them.
        while True:
            self._more.set()
            await self._unrecorded.changed()

    async def _collect(self, reader: BufferedByteReceiveStream) -> None:
        """Report outcomes until the sender closes, or until it has been silent for
        longer than its heartbeat allows (:class:`TimeoutError`)."""
        given, done = self._given, self._done
        while True:
            try:
                outcomes = await receive(reader, _HUNG_AFTER)
            except TimeoutError:
                log.error("the sender process %s sent nothing for %.0f s", self.pid, _HUNG_AFTER)
                raise
            for key, outcome in outcomes:
                given.discard(key)
                done(key, None if outcome is None else SendResult(*outcome))


def _kill(process: Process) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
