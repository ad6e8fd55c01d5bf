"""The service's own table (``bookings``, beside hookruntime's in one database) and
the workflow its rows move through."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import JSON, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from statemachine import State, StateMachine


def host_url(database_url: str) -> str:
    """hookruntime's database URL spelled for SQLAlchemy's async drivers."""
    if database_url.startswith("sqlite:"):
        return database_url.replace("sqlite:", "sqlite+aiosqlite:", 1)
    return database_url.replace("postgresql:", "postgresql+asyncpg:", 1)


class Base(DeclarativeBase):
    pass


class Booking(Base):
    __tablename__ = "bookings"

    id: Mapped[str] = mapped_column(String, primary_key=True)
    state: Mapped[str] = mapped_column(String)
    customer: Mapped[dict[str, Any]] = mapped_column(JSON)
    service: Mapped[dict[str, Any]] = mapped_column(JSON)
    start: Mapped[str] = mapped_column(String)
    end: Mapped[str] = mapped_column(String)
    notes: Mapped[str] = mapped_column(String, default="")
    # Optimistic concurrency: no row lock is held while hooks answer, so a booking
    # changed meanwhile fails the commit instead of being overwritten.
    version: Mapped[int] = mapped_column(Integer)
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012

    @classmethod
    def new(cls, **fields: Any) -> Booking:
        return cls(id=f"booking_{uuid.uuid4().hex[:12]}", state="requested", **fields)

    def document(self) -> dict[str, Any]:
        """The booking as the booking topics carry it (plugins/booking)."""
        return {
            "id": self.id,
            "state": self.state,
            "workflow": "booking_service",
            "customer": self.customer,
            "service": self.service,
            "start": self.start,
            "end": self.end,
            "notes": self.notes,
        }

    def update(self, document: dict[str, Any]) -> None:
        """Take a hook's patched document; ``id`` and ``state`` are the topic's reserved
        paths, so hooks cannot change them."""
        self.customer = document.get("customer") or {}
        self.service = document.get("service") or {}
        self.start = document.get("start", self.start)
        self.end = document.get("end", self.end)
        self.notes = document.get("notes") or ""


class BookingWorkflow(StateMachine):
    requested = State(initial=True)
    confirmed = State()
    completed = State(final=True)
    cancelled = State(final=True)

    confirm = requested.to(confirmed)
    complete = confirmed.to(completed)
    cancel = requested.to(cancelled) | confirmed.to(cancelled)
