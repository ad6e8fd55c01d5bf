"""Registrations: the list with health, one registration with its recent attempts,
enable/disable, rotate the secret (shown once), send a test event."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from ..registrations import Registration
from ..runtime import HookRuntime
from ..store.models import ATTEMPTS, DELIVERIES, REGISTRATIONS
from .render import page, read_form, redirect, runtime_of
from .sessions import Session

__all__ = ["RegistrationViews"]

RECENT = 20
_HEALTH = (
    REGISTRATIONS.c.id,
    REGISTRATIONS.c.consecutive_failures,
    REGISTRATIONS.c.failing_since,
)


async def _health(runtime: HookRuntime, org: str) -> dict[str, Any]:
    query = select(*_HEALTH).where(REGISTRATIONS.c.org_id == org)
    async with runtime.database.engine.connect() as conn:
        return {row.id: row for row in await conn.execute(query)}


async def recent_attempts(
    runtime: HookRuntime, org: str, registration_id: str
) -> list[dict[str, Any]]:
    """The newest attempts of one registration: its latest deliveries' (newest first over
    ix_deliveries_org) and its latest blocking calls' (over ix_attempts_calls_created)."""
    latest = (
        select(DELIVERIES.c.id)
        .where(DELIVERIES.c.org_id == org, DELIVERIES.c.registration_id == registration_id)
        .order_by(DELIVERIES.c.created_at.desc())
        .limit(RECENT)
    )
    queued = select(ATTEMPTS).where(ATTEMPTS.c.delivery_id.in_(latest.scalar_subquery()))
    calls = (
        select(ATTEMPTS)
        .where(
            ATTEMPTS.c.delivery_id.is_(None),
            ATTEMPTS.c.org_id == org,
            ATTEMPTS.c.registration_id == registration_id,
        )
        .order_by(ATTEMPTS.c.created_at.desc())
        .limit(RECENT)
    )
    async with runtime.database.engine.connect() as conn:
        rows = [dict(r) for r in (await conn.execute(queued)).mappings()]
        rows += [dict(r) for r in (await conn.execute(calls)).mappings()]
    rows.sort(key=lambda r: r["created_at"], reverse=True)
    return rows[:RECENT]


class RegistrationViews:
    async def listing(self, request: Request, session: Session) -> Response:
        runtime = runtime_of(request)
        hidden = session.hidden(runtime.catalog)
        items = [
            r
            for r in await runtime.registrations.list(org=session.org, limit=1000)
            if not hidden & set(r.topics)
        ]
        health = await _health(runtime, session.org)
        breakers = {r.id: runtime.breakers[r.id].state for r in items}
        return page(
            request,
            "registrations.html",
            session,
            items=items,
            health=health,
            breakers=breakers,
        )

    async def detail(self, request: Request, session: Session, **shown: Any) -> Response:
        runtime = runtime_of(request)
        registration = await self._visible(request, session)
        health = (await _health(runtime, session.org)).get(registration.id)
        attempts = await recent_attempts(runtime, session.org, registration.id)
        return page(
            request,
            "registration.html",
            session,
            registration=registration,
            health=health,
            breaker=runtime.breakers[registration.id].state,
            attempts=attempts,
            **shown,
        )

    async def show(self, request: Request, session: Session) -> Response:
        return await self.detail(request, session, done=request.query_params.get("done"))

    @staticmethod
    async def _visible(request: Request, session: Session) -> Registration:
        runtime = runtime_of(request)
        registration = await runtime.registrations.get(request.path_params["id"], org=session.org)
        session.check_topics(runtime.catalog, registration.topics)
        return registration

    async def toggle(self, request: Request, session: Session) -> Response:
        fields = await read_form(request, session.csrf)
        await self._visible(request, session)
        registration_id = request.path_params["id"]
        active = fields.get("active") == "true"
        await runtime_of(request).registrations.update(
            registration_id,
            org=session.org,
            rev=fields.get("rev", ""),
            scopes=session.scopes,
            active=active,
        )
        return redirect(
            request,
            f"/ui/registrations/{registration_id}?done={'enabled' if active else 'disabled'}",
        )

    async def rotate(self, request: Request, session: Session) -> Response:
        fields = await read_form(request, session.csrf)
        await self._visible(request, session)
        rotated = await runtime_of(request).registrations.rotate_secret(
            request.path_params["id"], org=session.org, rev=fields.get("rev", "")
        )
        # Answered in place, not redirected: the new secret must not be kept anywhere.
        return await self.detail(request, session, secret=rotated.secret)

    async def test(self, request: Request, session: Session) -> Response:
        await read_form(request, session.csrf)
        await self._visible(request, session)
        registration_id = request.path_params["id"]
        answer = await runtime_of(request).send_test(
            org=session.org, registration_id=registration_id
        )
        if "result" in answer:
            return await self.detail(request, session, call=answer["result"])
        return redirect(request, f"/ui/deliveries?event_id={answer['id']}")
