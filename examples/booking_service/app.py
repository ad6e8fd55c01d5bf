"""The HTTP API: create and read bookings, and run their transitions.

``POST /bookings/{id}/confirm`` asks the ``before_confirmation`` receivers first: a deny
answers 409 with their ``user_message`` and leaves the booking as it was; an allow's
patch is stored with the new state. Every transition writes ``booking_state_changed``
to the outbox in the transaction that stores it. hookruntime's own API, dashboard and
reference are mounted at ``/hooks`` (``/hooks/ui/``, ``/hooks/docs``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm.exc import StaleDataError
from statemachine.exceptions import TransitionNotAllowed

from hookruntime import HookRuntime, api
from hookruntime.workflow import TransitionDenied, WorkflowHooks

from .models import Base, Booking, BookingWorkflow, host_url

log = logging.getLogger("booking_service")
TRANSITIONS = ("confirm", "complete", "cancel")


class NewBooking(BaseModel):
    customer: dict[str, Any] = Field(examples=[{"id": "c1", "email": "john@doe.com"}])
    service: dict[str, Any] = Field(examples=[{"id": "svc_osce", "name": "OSCE practice"}])
    start: str = Field(examples=["2026-02-03T09:00:00Z"])
    end: str = Field(examples=["2026-02-03T10:00:00Z"])
    notes: str = ""


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


def served(url: str, *, org: str) -> FastAPI:
    """The service as ``python -m booking_service`` serves it, on the database ``url``:
    its lifespan opens the runtime (migrating hookruntime's tables, starting the delivery
    worker), then creates the service's own tables, and undoes both at shutdown."""
    runtime = HookRuntime(url)
    engine = create_async_engine(host_url(url))

    @asynccontextmanager
    async def tables(_app: FastAPI) -> AsyncIterator[None]:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        yield
        await engine.dispose()

    return create_app(runtime, engine, org=org, lifespan=api.lifespan(runtime, then=tables))


Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[Any]]


def create_app(
    runtime: HookRuntime, engine: AsyncEngine, *, org: str, lifespan: Lifespan | None = None
) -> FastAPI:
    """The service over the runtime and the host's engine (one database for both); the
    runtime is open already, or ``lifespan`` opens it."""
    app = FastAPI(title="booking service", lifespan=lifespan)
    app.mount("/hooks", api.create_app(runtime))
    hooks = WorkflowHooks(
        runtime,
        org=org,
        subject="booking",
        changed="booking_state_changed",
        guards={"confirm": "before_confirmation"},
        document=Booking.document,
        update=Booking.update,
    )

    @app.post("/bookings", status_code=201)
    async def create(body: NewBooking) -> dict[str, Any]:
        async with AsyncSession(engine, expire_on_commit=False) as session, session.begin():
            booking = Booking.new(**body.model_dump())
            session.add(booking)
        return booking.document()

    @app.get("/bookings/{booking_id}")
    async def read(booking_id: str) -> Any:
        async with AsyncSession(engine) as session:
            booking = await session.get(Booking, booking_id)
            return not_found(booking_id) if booking is None else booking.document()

    @app.post("/bookings/{booking_id}/{transition}")
    async def transition(booking_id: str, transition: str) -> Any:
        if transition not in TRANSITIONS:
            return problem(404, "Not found", f"no transition {transition!r}")
        async with AsyncSession(engine, expire_on_commit=False) as session, session.begin():
            booking = await session.get(Booking, booking_id)
            if booking is None:
                return not_found(booking_id)
            machine = BookingWorkflow(model=booking, listeners=[hooks])
            # The hook call, the state change and the outbox write; any exception from
            # here to the commit rolls back the change and its event together.
            await machine.send(transition, session=session)
        return booking.document()

    @app.exception_handler(TransitionDenied)
    async def denied(_request: Request, exc: TransitionDenied) -> JSONResponse:
        log.info("%s denied by %s: %s", exc.transition, exc.topic, exc.reason)
        message = exc.user_message or "This booking cannot be confirmed now."
        return problem(409, "Transition denied", message, user_message=message)

    @app.exception_handler(TransitionNotAllowed)
    async def not_allowed(_request: Request, exc: TransitionNotAllowed) -> JSONResponse:
        return problem(409, "Transition not allowed", str(exc))

    @app.exception_handler(StaleDataError)
    async def stale(_request: Request, _exc: StaleDataError) -> JSONResponse:
        return problem(409, "Changed meanwhile", "The booking changed meanwhile; try again.")

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
        return problem(422, "Invalid request", "see errors", errors=fields)

    return app


def not_found(booking_id: str) -> JSONResponse:
    return problem(404, "Not found", f"no booking {booking_id!r}")
