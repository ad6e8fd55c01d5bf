"""Blocking calls, read back from the attempt log: each receiver's outcome, the merged
decision, the patch conflicts and the deadline as the call kept them with its first row
(older rows, written without them, get a decision re-derived from the outcomes and the
topic's deadline), and a latency waterfall against the deadline.

Call ids are ULIDs, so a call's time is in its id: one call is read over the calls'
``created_at`` index in a short range, not by scanning the log for its id.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from ..catalog import Catalog
from ..errors import NotFoundError
from ..runtime import HookRuntime
from ..store.models import ATTEMPTS, REGISTRATIONS
from .render import page, runtime_of
from .sessions import Session

__all__ = ["Call", "CallViews", "call_time"]

RECENT_ROWS = 500
_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_FAILURES = ("timeout", "error", "invalid", "circuit_open")


def call_time(call_id: str) -> float | None:
    """The creation time (Unix seconds) written in a ``call_…`` id, or None."""
    prefix, _, body = call_id.partition("_")
    if prefix != "call" or len(body) != 26 or any(c not in _ALPHABET for c in body):
        return None
    value = 0
    for char in body:
        value = value * 32 + _ALPHABET.index(char)
    return (value >> 80) / 1000.0


@dataclass
class Call:
    id: str
    topic: str
    started: float
    receivers: list[dict[str, Any]]
    decision: str
    partial: bool
    deadline: float | None
    #: As the call kept them; None when its rows predate keeping them.
    conflicts: list[dict[str, str]] | None = None
    reason: str | None = None
    #: The deadline the caller asked for, when the topic's shorter one capped it.
    asked: float | None = None

    @property
    def span_ms(self) -> float:
        """The waterfall's width: the deadline, or the slowest receiver past it."""
        longest = max((r["end_ms"] for r in self.receivers), default=0.0)
        return max(longest, (self.deadline or 0.0) * 1000, 1.0)


def _calls(rows: list[dict[str, Any]], catalog: Catalog, policies: dict[str, Any]) -> list[Call]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        grouped[row["call_id"]].append(row)
    found = []
    for call_id, attempts in grouped.items():
        starts = [a["created_at"] - a["latency_ms"] / 1000 for a in attempts]
        begun = min(starts)
        topic = catalog.get(attempts[0]["topic"])
        decision, partial = "allow", False
        receivers = []
        for attempt, start in sorted(zip(attempts, starts, strict=True), key=lambda p: p[1]):
            policy = policies.get(attempt["registration_id"]) or (
                topic.on_failure if topic else "ignore"
            )
            if attempt["outcome"] == "deny" or (
                attempt["outcome"] in _FAILURES and policy == "deny"
            ):
                decision = "deny"
            elif attempt["outcome"] in _FAILURES:
                partial = True
            offset = (start - begun) * 1000
            receivers.append(
                {**attempt, "start_ms": offset, "end_ms": offset + attempt["latency_ms"]}
            )
        call = Call(
            call_id,
            attempts[0]["topic"],
            begun,
            receivers,
            decision,
            partial,
            topic.deadline if topic else None,
        )
        kept = next((_kept(a["call_detail"]) for a in attempts if a.get("call_detail")), None)
        found.append(_as_kept(call, kept) if kept else call)
    found.sort(key=lambda c: c.started, reverse=True)
    return found


def _kept(raw: str) -> dict[str, Any] | None:
    try:
        detail = json.loads(raw)
    except ValueError:
        return None
    return detail if isinstance(detail, dict) else None


def _as_kept(call: Call, detail: dict[str, Any]) -> Call:
    """``call`` with what the call itself recorded in place of what was re-derived."""
    if isinstance(detail.get("deadline_ms"), int | float):
        call.deadline = detail["deadline_ms"] / 1000
        asked = detail.get("requested_deadline_ms")
        if isinstance(asked, int | float) and asked / 1000 > call.deadline:
            call.asked = asked / 1000
    if isinstance(detail.get("allowed"), bool):
        call.decision = "allow" if detail["allowed"] else "deny"
        call.partial = bool(detail.get("partial"))
        call.reason = detail.get("reason")
        conflicts = detail.get("conflicts")
        call.conflicts = [c for c in conflicts if isinstance(c, dict)] if conflicts else []
    return call


async def _read(runtime: HookRuntime, session: Session, query: Any) -> list[Call]:
    org = session.org
    hidden = session.hidden(runtime.catalog)
    if hidden:
        query = query.where(ATTEMPTS.c.topic.not_in(sorted(hidden)))
    policies = select(REGISTRATIONS.c.id, REGISTRATIONS.c.on_failure).where(
        REGISTRATIONS.c.org_id == org
    )
    async with runtime.database.engine.connect() as conn:
        rows = [dict(r) for r in (await conn.execute(query)).mappings()]
        known = {r.id: r.on_failure for r in await conn.execute(policies)}
    return _calls(rows, runtime.catalog, known)


class CallViews:
    async def listing(self, request: Request, session: Session) -> Response:
        runtime = runtime_of(request)
        query = (
            select(ATTEMPTS)
            .where(ATTEMPTS.c.delivery_id.is_(None), ATTEMPTS.c.org_id == session.org)
            .order_by(ATTEMPTS.c.created_at.desc())
            .limit(RECENT_ROWS)
        )
        calls = await _read(runtime, session, query)
        return page(request, "calls.html", session, calls=calls[:50], now=time.time())

    async def detail(self, request: Request, session: Session) -> Response:
        call_id = request.path_params["id"]
        moment = call_time(call_id)
        if moment is None:
            raise NotFoundError(f"no call {call_id!r} in org {session.org!r}")
        query = select(ATTEMPTS).where(
            ATTEMPTS.c.delivery_id.is_(None),
            ATTEMPTS.c.created_at >= moment - 1,
            ATTEMPTS.c.created_at <= moment + 600,
            ATTEMPTS.c.org_id == session.org,
            ATTEMPTS.c.call_id == call_id,
        )
        calls = await _read(runtime_of(request), session, query)
        if not calls:
            raise NotFoundError(f"no call {call_id!r} in org {session.org!r}")
        return page(request, "call.html", session, call=calls[0])
