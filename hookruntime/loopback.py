"""A real HTTP/1.1 server on loopback whose answers a test scripts, hostile ones included
(hang, trickle, huge body, close); public as :mod:`hookruntime.testing`.

It speaks just enough HTTP/1.1 for webhooks (Content-Length bodies, keep-alive), on
plain asyncio streams so that every byte it sends is under the test's control.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from .receiver import sign_answer

__all__ = ["LoopbackReceiver", "Received", "Reply"]

Behaviour = Literal["answer", "hang", "trickle", "huge", "close"]


@dataclass(frozen=True)
class Received:
    """One request as the receiver saw it; header names are lower-case."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    behaviour: Behaviour = "answer"
    size: int = 0
    interval: float = 1.0

    @classmethod
    def json(cls, document: Any, status: int = 200, delay: float = 0.0) -> Reply:
        return cls(
            status, json.dumps(document).encode(), {"Content-Type": "application/json"}, delay
        )

    @classmethod
    def signed(
        cls,
        document: Any,
        secret: str,
        request_id: str | None,
        *,
        now: float | None = None,
        status: int = 200,
    ) -> Reply:
        """A signed answer to a blocking call (``signed_responses=True``), bound to the
        request whose id is ``request_id``, as :func:`hookruntime.receiver.sign_answer`
        makes it; ``now`` back-dates or post-dates its ``iat``."""
        body = sign_answer(document, secret, request_id, now=now)
        return cls(status, body, {"Content-Type": "application/jose"})

    @classmethod
    def hang(cls) -> Reply:
        """Read the request, then never answer."""
        return cls(behaviour="hang")

    @classmethod
    def trickle(cls, interval: float = 1.0) -> Reply:
        """Answer 200 with a 1,000-byte body, one byte per ``interval`` seconds."""
        return cls(behaviour="trickle", interval=interval)

    @classmethod
    def huge(cls, size: int = 100 * 1024 * 1024, declared: bool = True) -> Reply:
        """Answer 200 with a body of ``size`` bytes, as fast as the socket takes it;
        undeclared, the body has no Content-Length and ends when the connection closes."""
        return cls(behaviour="huge", size=size, headers={} if declared else {"Connection": "close"})

    @classmethod
    def close(cls) -> Reply:
        """Close the connection without answering."""
        return cls(behaviour="close")


Handler = Callable[[Received], "Reply | Awaitable[Reply]"]
_REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    301: "Moved Permanently",
    302: "Found",
    400: "Bad Request",
    404: "Not Found",
    410: "Gone",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class LoopbackReceiver:
    """An HTTP server on 127.0.0.1 (a free port) that records requests (unless
    ``keep=False``) and answers each with ``handler(request)``; the default handler
    answers 200 with no body."""

    def __init__(
        self, handler: Handler | None = None, host: str = "127.0.0.1", keep: bool = True
    ) -> None:
        self.handler: Handler = handler or (lambda _request: Reply())
        self.host = host
        self.keep = keep
        self.port = 0
        self.received: list[Received] = []
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/hook"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, 0, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in self._handlers:
                task.cancel()
            await asyncio.gather(*self._handlers, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> LoopbackReceiver:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                if self.keep:
                    self.received.append(request)
                reply = self.handler(request)
                if inspect.isawaitable(reply):
                    reply = await reply
                if not await _send(writer, reply):
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            return
        except asyncio.CancelledError:
            return  # the receiver is stopping
        finally:
            self._handlers.discard(task)
            writer.close()


async def _read_request(reader: asyncio.StreamReader) -> Received | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _version = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    return Received(method, path, headers, body, time.time())


async def _send(writer: asyncio.StreamWriter, reply: Reply) -> bool:
    """Write ``reply``; False when the connection must end."""
    if reply.delay:
        await asyncio.sleep(reply.delay)
    if reply.behaviour == "hang":
        await asyncio.Event().wait()
    if reply.behaviour == "close":
        return False
    status_line = f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Status')}\r\n"
    if reply.behaviour == "trickle":
        writer.write(f"{status_line}Content-Length: 1000\r\n\r\n".encode())
        for _ in range(1000):
            writer.write(b" ")
            await writer.drain()
            await asyncio.sleep(reply.interval)
        return True
    if reply.behaviour == "huge":
        declared = "Connection: close" if reply.headers else f"Content-Length: {reply.size}"
        writer.write(f"{status_line}{declared}\r\n\r\n".encode())
        chunk = b"x" * 65536
        for _ in range(reply.size // len(chunk)):
            writer.write(chunk)
            await writer.drain()
        return not reply.headers
    headers = {"Content-Length": str(len(reply.body)), **reply.headers}
    head = status_line + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    writer.write(head.encode() + reply.body)
    await writer.drain()
    return True
