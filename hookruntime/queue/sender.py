"""The sender process (``sender_process=True``): sender lanes in a process of their own,
driven by their worker over a socket pair (:mod:`hookruntime.queue.sender_link` holds the
worker's end and the frames). It sends what it is given and reports what came back;
it stops on its worker's close frame, or at once and quietly when its worker is gone.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
from collections.abc import Sequence
from typing import Any

import anyio
from anyio.abc import SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream

from ..http import client_class
from .lanes import Lanes, Request, SendResult, Unrecorded
from .sender_link import HEARTBEAT, PEER_GONE, SenderSettings, receive, result_frame, send

__all__ = ["main"]


async def _serve(fd: int) -> None:
    # Stopped by its worker (a close frame, or end of file), not by the signals that a
    # terminal or a service manager sends the worker's whole process group.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    stream = await SocketStream.from_socket(socket.socket(fileno=fd))
    try:
        await _sending(stream)
    except* PEER_GONE:
        # Its worker is gone, and with it whoever would record what is in flight
        # here: leave now, quietly; those deliveries are redone after their leases.
        os._exit(1)


async def _sending(stream: SocketStream) -> None:
    reader = BufferedByteReceiveStream(stream)
    settings: SenderSettings = await receive(reader)
    logging.basicConfig(
        level=settings.log_level, format="%(levelname)s %(name)s[sender %(process)d]: %(message)s"
    )
    backend = client_class(settings.http_client)
    client = backend(limit=settings.client_limit, allow_private=settings.allow_private)
    await client.open()
    await send(stream, "ready")
    outcomes: list[tuple[int, tuple[Any, ...] | None]] = []
    full = anyio.Event()

    def done(key: int, outcome: SendResult | None) -> None:
        outcomes.append((key, None if outcome is None else result_frame(outcome)))
        full.set()

    async def flush() -> None:
        nonlocal outcomes
        if outcomes:
            batch, outcomes = outcomes, []
            await send(stream, batch)

    async def flusher() -> None:
        # Once per turn of the event loop that finished anything: what finished in one
        # turn goes in one frame, and nothing waits for a timer. A quiet spell still
        # sends an empty frame now and then, which tells the worker this is alive.
        nonlocal full
        while True:
            with anyio.move_on_after(HEARTBEAT):
                await full.wait()
            full = anyio.Event()
            if outcomes:
                await flush()
            else:
                await send(stream, [])

    # Sent and unrecorded: a round under way and a round on its way back to be written.
    unrecorded = Unrecorded(2 * settings.concurrency)
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
                message = await receive(reader)
                if message is None:
                    break
                if isinstance(message, int):
                    unrecorded.recorded(message)
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
