"""Helpers for testing receivers and sources: a real HTTP/1.1 server on loopback whose
answers a test scripts, hostile ones included (:class:`LoopbackReceiver`, from
:mod:`hookruntime.loopback`); requests signed as hookruntime sends them
(:func:`signed_request`) and read back by their profile (:func:`read_request`); and
waits and assertions (:func:`eventually`, :func:`drain`, :func:`assert_delivered`). The
fixtures built on them are in :mod:`hookruntime.pytest_plugin`.

::

    async with LoopbackReceiver(lambda request: Reply.json({"decision": "deny"})) as rx:
        await runtime.registrations.create(org="acme", topics=["user_logged_in"], url=rx.url)
        result = await runtime.call("user_logged_in", claims, org="acme")
        assert rx.received[0].headers["content-type"] == "application/jose"
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import and_, func, or_, select

from .errors import HookRuntimeError, ValidationError
from .ids import new_id
from .loopback import LoopbackReceiver, Received, Reply
from .profiles import Message, get_profile
from .receiver import verify
from .store.models import DELIVERIES, EVENTS

if TYPE_CHECKING:
    from .runtime import HookRuntime

__all__ = [
    "Delivered",
    "DrainTimeout",
    "LoopbackReceiver",
    "Received",
    "Reply",
    "assert_delivered",
    "drain",
    "eventually",
    "read_request",
    "signed_request",
]


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
