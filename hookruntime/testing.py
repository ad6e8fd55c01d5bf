"""Helpers for testing receivers and sources: a real HTTP/1.1 server on loopback whose
answers a test scripts, hostile ones included (hang, trickle, huge body, close).

::

    async with LoopbackReceiver(lambda request: Reply.json({"decision": "deny"})) as rx:
        await runtime.registrations.create(org="acme", topics=["user_logged_in"], url=rx.url)
        result = await runtime.call("user_logged_in", claims, org="acme")
        assert rx.received[0].headers["content-type"] == "application/jose"

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
from typing import Any, Literal, TypeVar

from .receiver import sign_answer

__all__ = ["LoopbackReceiver", "Received", "Reply", "eventually"]

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


T = TypeVar("T")


async def eventually(
    check: Callable[[], T | Awaitable[T]],
    timeout: float = 10.0,  # noqa: ASYNC109 - a polling budget, not a cancellation point
    interval: float = 0.02,
) -> T:
    """Poll ``check()`` (sync or async) until it returns something truthy, and return it;
    fail with AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        assert time.monotonic() < deadline, f"condition not met within {timeout} s"
        await asyncio.sleep(interval)


# -- The pytest kit's helpers (fixtures in hookruntime.pytest_plugin) -----------------
# Imported here, below the receiver, so that its code above stays as it was.

import base64  # noqa: E402
from typing import TYPE_CHECKING  # noqa: E402

from sqlalchemy import and_, func, or_, select  # noqa: E402

from .errors import HookRuntimeError, ValidationError  # noqa: E402
from .ids import new_id  # noqa: E402
from .profiles import Message, get_profile  # noqa: E402
from .receiver import verify  # noqa: E402
from .store.models import DELIVERIES, EVENTS  # noqa: E402

if TYPE_CHECKING:
    from .runtime import HookRuntime

__all__ += [
    "Delivered",
    "DrainTimeout",
    "assert_delivered",
    "drain",
    "read_request",
    "signed_request",
]


class DrainTimeout(HookRuntimeError, AssertionError):
    """Deliveries were still open when :func:`drain` gave up; the message lists them."""


async def drain(
    runtime: HookRuntime,
    timeout: float = 10.0,  # noqa: ASYNC109 - a polling budget, not a cancellation point
    *,
    horizon: float = 1.0,
) -> None:
    """Wait until no delivery is pending or delivering and no failed one is due within
    ``horizon`` seconds (so fast retry schedules run out, slow ones are left waiting).
    Deliveries held for a disabled registration are not waited for."""
    if not runtime.workers:
        raise DrainTimeout("this runtime has no delivery workers (workers=0): nothing delivers")
    deadline = time.monotonic() + timeout
    while True:
        soon = time.time() + horizon
        busy = DELIVERIES.c.next_at.is_not(None) & or_(
            DELIVERIES.c.status.in_(("pending", "delivering")),
            and_(DELIVERIES.c.status == "failed", DELIVERIES.c.next_at <= soon),
        )
        async with runtime.database.engine.connect() as conn:
            count = (await conn.execute(select(func.count()).where(busy))).scalar_one()
            if not count:
                return
            if time.monotonic() >= deadline:
                rows = (await conn.execute(select(DELIVERIES).where(busy).limit(5))).mappings()
                listed = "; ".join(
                    f"{r['id']} ({r['topic']}, {r['status']}, {r['attempts']} attempts"
                    f"{', last error: ' + r['last_error'] if r['last_error'] else ''})"
                    for r in rows
                )
                raise DrainTimeout(f"{count} deliveries still open after {timeout} s: {listed}")
        await asyncio.sleep(0.02)


def signed_request(
    profile: str,
    payload: Any,
    secret: str,
    *,
    topic: str,
    event_id: str | None = None,
    timestamp: float | None = None,
    integration_id: str = "",
) -> tuple[dict[str, str], bytes]:
    """The headers and body hookruntime would send with ``profile`` (signed by its own
    signer), for a receiver's unit test to feed its handler; :func:`hookruntime.receiver.verify`
    accepts them."""
    implementation = get_profile(profile)
    problem = implementation.secret_problem(secret)
    if problem:
        raise ValidationError.single("secret", problem)
    message = Message(
        topic,
        event_id or new_id("evt"),
        payload,
        [secret],
        time.time() if timestamp is None else timestamp,
        integration_id,
    )
    rendered = implementation.render(message)
    return dict(rendered.headers), rendered.body


@dataclass(frozen=True)
class Delivered:
    """One delivered event as an assertion sees it. ``topic`` is None for a ``jws``
    request, which does not name its topic."""

    topic: str | None
    event_id: str | None
    data: Any


def _profile_of(headers: dict[str, str]) -> str | None:
    for name, profile in (
        ("webhook-signature", "standard"),
        ("x-servicehook-signature", "servicehook"),
        ("x-signature-sha256", "envelope"),
    ):
        if name in headers:
            return profile
    return "jws" if headers.get("content-type") == "application/jose" else None


def read_request(request: Received, secret: str | None = None) -> Delivered:
    """What ``request`` delivers, read by its profile (told by its headers); with
    ``secret``, its signature is checked too (:class:`VerificationError` if it fails)."""
    profile, headers = _profile_of(request.headers), request.headers
    if profile is None:
        try:
            return Delivered(None, None, request.json() if request.body else None)
        except ValueError:  # not JSON: the bytes themselves are what was delivered
            return Delivered(None, None, request.body)
    if secret is not None:
        verified = verify(profile, headers, request.body, secret)
        topic, event_id, data = verified.topic, verified.event_id, verified.payload
    elif profile == "jws":
        part = request.body.split(b".")[1]
        data = json.loads(base64.urlsafe_b64decode(part + b"=" * (-len(part) % 4)))
        topic, event_id = None, data.get("webhook_request_id")
    elif profile == "servicehook":
        topic, event_id = headers["x-servicehook-event"], headers.get("x-servicehook-id")
        data = request.json()
    else:
        document = request.json()
        topic = document.get("type", document.get("event_type"))
        event_id = headers.get("webhook-id", document.get("event_id"))
        data = document["data"]
    if profile == "jws" and isinstance(data, dict):
        data = {k: v for k, v in data.items() if k != "webhook_request_id"}
    return Delivered(topic, event_id, data)


async def assert_delivered(
    source: LoopbackReceiver | HookRuntime,
    *,
    topic: str | None = None,
    count: int | None = None,
    data: Any = None,
    org: str | None = None,
    secret: str | None = None,
) -> list[Delivered]:
    """Assert that ``source`` (a receiver, or a runtime's delivered deliveries) holds
    ``count`` deliveries (at least one when None) matching ``topic`` and ``data`` (equal,
    when given), and return them. A receiver's requests are checked against ``secret``
    when given; a runtime's are filtered by ``org`` when given."""
    if isinstance(source, LoopbackReceiver):
        seen = [read_request(request, secret) for request in source.received]
    else:
        query = (
            select(DELIVERIES.c.topic, DELIVERIES.c.event_id, EVENTS.c.payload)
            .join(EVENTS, EVENTS.c.id == DELIVERIES.c.event_id)
            .where(DELIVERIES.c.status == "delivered")
            .order_by(DELIVERIES.c.delivered_at)
        )
        if org is not None:
            query = query.where(DELIVERIES.c.org_id == org)
        async with source.database.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        seen = [Delivered(row[0], row[1], json.loads(row[2])) for row in rows]
    matched = [
        item
        for item in seen
        if (topic is None or item.topic == topic) and (data is None or item.data == data)
    ]
    wanted = "at least 1" if count is None else str(count)
    if (count is None and not matched) or (count is not None and len(matched) != count):
        described = ", ".join(f"{item.topic or '(jws: no topic)'} {item.data!r}" for item in seen)
        raise AssertionError(
            f"expected {wanted} deliveries matching topic={topic!r} data={data!r}, "
            f"found {len(matched)}; delivered: {described or 'nothing'}"
        )
    return matched
