"""Sender lanes in a process of their own (``sender_process=True``), so that sending and
the rest run on two cores: the worker claims, signs, decides and writes (and runs its
host's emits), its sender process only sends.

The two speak over a socket pair in frames: a 4-byte length, then a pickle of plain
tuples (pickling the dataclasses themselves cost ~12 us per request each way, tuples
~1 us). Worker to sender: the settings once, then lists of requests and counts of
results written, then ``None`` to close. Sender to worker: ``"ready"`` once, then lists
of ``(key, outcome or None)``, one per turn of its event loop that finished anything.
Both ends are this package, started together. A sender whose worker dies reads end of
file and exits; a worker whose sender dies gives back what it had handed it (those
deliveries are redone when their leases expire, as a killed worker's are) and starts
another.
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import socket
import struct
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.abc import SocketStream, TaskStatus
from anyio.streams.buffered import BufferedByteReceiveStream

from ..errors import HookRuntimeError
from ..http import HttpClient
from .lanes import Done, Lanes, Outcome, Request

__all__ = ["RemoteLanes", "SenderSettings"]

log = logging.getLogger("hookruntime.worker")
_HEADER = struct.Struct(">I")
_RESTART_AFTER = 1.0
_ENTRY = "from hookruntime.queue.remote import main; main()"


@dataclass(frozen=True)
class SenderSettings:
    concurrency: int
    cap: int
    grace: float
    allow_private: bool
    client_limit: int
    log_level: int = logging.WARNING


async def _send(stream: SocketStream, message: object) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    await stream.send(_HEADER.pack(len(data)) + data)


async def _receive(reader: BufferedByteReceiveStream) -> Any:
    """The next frame; raises :class:`anyio.EndOfStream` at end of file."""
    try:
        (size,) = _HEADER.unpack(await reader.receive_exactly(_HEADER.size))
        return pickle.loads(await reader.receive_exactly(size))
    except anyio.IncompleteRead:
        raise anyio.EndOfStream from None


def _pack(request: Request) -> tuple[Any, ...]:
    return (
        request.key,
        request.delivery_id,
        request.registration_id,
        request.url,
        request.headers,
        request.body,
        request.timeout,
        request.send_by,
    )


class RemoteLanes:
    """The worker's end: takes requests as :class:`~hookruntime.queue.lanes.Lanes` does
    and gives each back through ``done`` when its sender process reports it."""

    def __init__(self, settings: SenderSettings, done: Done) -> None:
        self._settings = settings
        self._done = done
        self._pending: list[Request] = []
        self._more = anyio.Event()
        self._closing = False
        self._given: set[int] = set()
        self._recorded = 0
        #: The sender process's id while one runs.
        self.pid: int | None = None

    def put(self, requests: list[Request]) -> None:
        self._pending.extend(requests)
        self._more.set()

    def recorded(self, count: int) -> None:
        """Tell the sender ``count`` results it sent were written (see Lanes)."""
        self._recorded += count
        self._more.set()

    def close(self) -> None:
        self._closing = True
        self._more.set()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run a sender process until closed, starting another whenever one dies;
        started once the first is ready to send."""
        await self._session(task_status)
        while not self._closing:
            log.error(
                "the sender process exited unexpectedly; the %d deliveries it held are "
                "redone when their leases expire; starting another in %.0f s",
                len(self._given),
                _RESTART_AFTER,
            )
            given, self._given = self._given, set()
            for key in given:
                self._done(key, None)
            await anyio.sleep(_RESTART_AFTER)
            await self._session(None)

    async def _session(self, task_status: TaskStatus[None] | None) -> None:
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
        try:
            try:
                await _send(stream, self._settings)
                await _receive(reader)  # "ready"
            except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                if task_status is None:
                    return  # run() says so and starts another
                raise HookRuntimeError(
                    "the sender process exited before it was ready (its output is above)"
                ) from None
            if task_status is not None:
                task_status.started()
            try:
                async with anyio.create_task_group() as group:
                    group.start_soon(self._forward, stream)
                    await self._collect(reader)
                    group.cancel_scope.cancel()
            except* (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                # It died; run() says so and starts another. (Grouped: its end may also
                # be reset, not closed, when it dies with frames unread.)
                pass
        finally:
            with anyio.CancelScope(shield=True):
                # Closing our end makes it exit at once if it has not already.
                await stream.aclose()
                with anyio.move_on_after(5):
                    await process.wait()
                if process.returncode is None:
                    process.kill()
                    await process.wait()
            self.pid = None

    async def _forward(self, stream: SocketStream) -> None:
        while True:
            await self._more.wait()
            self._more = anyio.Event()
            requests, self._pending = self._pending, []
            if requests:
                self._given.update(request.key for request in requests)
                await _send(stream, [_pack(request) for request in requests])
            if self._recorded:
                count, self._recorded = self._recorded, 0
                await _send(stream, count)
            if self._closing and not self._pending:
                await _send(stream, None)
                return

    async def _collect(self, reader: BufferedByteReceiveStream) -> None:
        given, done = self._given, self._done
        while True:
            try:
                outcomes = await _receive(reader)
            except anyio.EndOfStream:
                return
            for key, outcome in outcomes:
                given.discard(key)
                done(key, None if outcome is None else Outcome(*outcome))


async def _serve(fd: int) -> None:
    # Stopped by its worker (a close frame, or end of file), not by the signals that a
    # terminal or a service manager sends the worker's whole process group.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    stream = await SocketStream.from_socket(socket.socket(fileno=fd))
    reader = BufferedByteReceiveStream(stream)
    settings: SenderSettings = await _receive(reader)
    logging.basicConfig(
        level=settings.log_level, format="%(levelname)s %(name)s[sender %(process)d]: %(message)s"
    )
    client = HttpClient(limit=settings.client_limit, allow_private=settings.allow_private)
    await client.open()
    await _send(stream, "ready")
    outcomes: list[tuple[int, tuple[Any, ...] | None]] = []
    full = anyio.Event()

    def done(key: int, outcome: Outcome | None) -> None:
        if outcome is None:
            outcomes.append((key, None))
        else:
            o = outcome
            outcomes.append((key, (o.status, o.error, o.retry_after, o.response, o.latency, o.at)))
        full.set()

    async def flush() -> None:
        nonlocal outcomes
        if outcomes:
            batch, outcomes = outcomes, []
            await _send(stream, batch)

    async def flusher() -> None:
        # Once per turn of the event loop that finished anything: what finished in one
        # turn goes in one frame, and nothing waits for a timer.
        nonlocal full
        while True:
            await full.wait()
            full = anyio.Event()
            await flush()

    # Sent and unrecorded: a round under way and a round on its way back to be written.
    unrecorded = 2 * settings.concurrency
    lanes = Lanes(
        client, concurrency=settings.concurrency, cap=settings.cap, done=done, unrecorded=unrecorded
    )
    stopped = anyio.Event()

    async def run_lanes() -> None:
        try:
            await lanes.run()
        finally:
            stopped.set()

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(flusher)
            group.start_soon(run_lanes)
            while True:
                try:
                    message = await _receive(reader)
                except anyio.EndOfStream:
                    # Its worker is gone, and with it whoever would record what is in
                    # flight here: leave now; those deliveries are redone after their leases.
                    os._exit(1)
                if message is None:
                    break
                if isinstance(message, int):
                    lanes.recorded(message)
                    continue
                lanes.put([Request(*values) for values in message])
            lanes.close()
            with anyio.move_on_after(settings.grace):
                await stopped.wait()
            group.cancel_scope.cancel()
        await flush()
    finally:
        await client.aclose()
        await stream.aclose()


def main(argv: Sequence[str] | None = None) -> None:
    from .. import eventloop

    args = sys.argv[1:] if argv is None else argv
    eventloop.run(_serve, int(args[0]))
