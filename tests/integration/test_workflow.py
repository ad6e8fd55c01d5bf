"""hookruntime.workflow: a python-statemachine workflow whose transitions are guarded by
a blocking topic and announced by a queued one in the host's own transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import JSON, String, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from statemachine import State, StateMachine

from hookruntime import HookRuntime, HookRuntimeError
from hookruntime.receiver import verify
from hookruntime.testing import LoopbackReceiver, Received, Reply, eventually
from hookruntime.workflow import TransitionDenied, WorkflowHooks

pytestmark = pytest.mark.anyio
SECRET = "signature_secret"
ORG = "acme"


class Base(DeclarativeBase):
    pass


class Booking(Base):
    __tablename__ = "bookings"
    id: Mapped[str] = mapped_column(String, primary_key=True)
    state: Mapped[str] = mapped_column(String)
    customer: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    def document(self) -> dict[str, Any]:
        return {"id": self.id, "state": self.state, "customer": dict(self.customer)}

    def update(self, doc: dict[str, Any]) -> None:
        self.customer = doc.get("customer", {})


class BookingMachine(StateMachine):
    requested = State(initial=True)
    confirmed = State()
    cancelled = State(final=True)

    confirm = requested.to(confirmed)
    cancel = requested.to(cancelled) | confirmed.to(cancelled)


def host_url(database_url: str) -> str:
    if database_url.startswith("sqlite:"):
        return database_url.replace("sqlite:", "sqlite+aiosqlite:", 1)
    return database_url.replace("postgresql:", "postgresql+asyncpg:", 1)


@pytest.fixture
def workers() -> int:
    # Delivery only where a test waits for it: a runtime with a worker took 10 s to
    # close after a blocking call when this was written.
    return 0


@pytest.fixture
async def runtime(database_url: str, master_key: str, workers: int) -> AsyncIterator[HookRuntime]:
    async with HookRuntime(
        database_url, workers=workers, master_key=master_key, allow_private_targets=True
    ) as opened:
        yield opened


@pytest.fixture
async def engine(database_url: str, runtime: HookRuntime) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(host_url(database_url))
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    async with AsyncSession(engine) as session, session.begin():
        session.add(Booking(id="b1", state="requested", customer={"email": "a@example.com"}))
    yield engine
    await engine.dispose()


def hooks_for(runtime: HookRuntime) -> WorkflowHooks:
    return WorkflowHooks(
        runtime,
        org=ORG,
        subject="booking",
        changed="booking_state_changed",
        guards={"confirm": "before_confirmation"},
        document=Booking.document,
        update=Booking.update,
    )


async def send(
    engine: AsyncEngine, runtime: HookRuntime, event: str, *, fail_after: bool = False
) -> None:
    async with AsyncSession(engine, expire_on_commit=False) as session, session.begin():
        booking = await session.get_one(Booking, "b1")
        machine = BookingMachine(model=booking, listeners=[hooks_for(runtime)])
        await machine.send(event, session=session)
        if fail_after:
            raise RuntimeError("the host fails after the emit")


async def stored(engine: AsyncEngine) -> Booking:
    async with AsyncSession(engine) as session:
        return (await session.execute(select(Booking))).scalar_one()


async def state_changes(runtime: HookRuntime) -> int:
    return len(await runtime.deliveries.list(org=ORG, topic="booking_state_changed"))


async def subscribe(runtime: HookRuntime, rx: LoopbackReceiver, topic: str) -> None:
    await runtime.registrations.create(
        org=ORG, topics=[topic], url=rx.url, secret=SECRET, retry_schedule=[0.05] * 3
    )


@pytest.mark.parametrize("workers", [1])
async def test_commit_keeps_state_change_and_event_and_receiver_gets_it(
    runtime: HookRuntime, engine: AsyncEngine
) -> None:
    async with LoopbackReceiver() as rx:
        await subscribe(runtime, rx, "booking_state_changed")
        await send(engine, runtime, "confirm")

        assert (await stored(engine)).state == "confirmed"
        await eventually(lambda: rx.received)
        payload = verify("jws", rx.received[0].headers, rx.received[0].body, SECRET).payload
        assert payload["booking"]["id"] == "b1"
        assert payload["booking"]["state"] == "confirmed"
        assert payload["transition"] == {"name": "confirm", "from": "requested", "to": "confirmed"}


@pytest.mark.parametrize("workers", [1])
async def test_rollback_after_emit_leaves_neither_state_change_nor_event(
    runtime: HookRuntime, engine: AsyncEngine
) -> None:
    async with LoopbackReceiver() as rx:
        await subscribe(runtime, rx, "booking_state_changed")
        with pytest.raises(RuntimeError, match="after the emit"):
            await send(engine, runtime, "cancel", fail_after=True)

        assert (await stored(engine)).state == "requested"
        assert await state_changes(runtime) == 0
        assert rx.received == []


async def test_deny_cancels_transition_with_reason_and_user_message_and_emits_nothing(
    runtime: HookRuntime, engine: AsyncEngine
) -> None:
    deny = {"decision": "deny", "reason": "room closed", "user_message": "Pick another day."}
    async with LoopbackReceiver(lambda _r: Reply.json(deny)) as guard, LoopbackReceiver() as rx:
        await subscribe(runtime, guard, "before_confirmation")
        await subscribe(runtime, rx, "booking_state_changed")
        with pytest.raises(TransitionDenied) as denied:
            await send(engine, runtime, "confirm")

        assert isinstance(denied.value, HookRuntimeError)
        assert denied.value.reason == "room closed"
        assert denied.value.user_message == "Pick another day."
        assert (await stored(engine)).state == "requested"
        assert await state_changes(runtime) == 0
        assert len(guard.received) == 1


async def test_allow_with_patch_is_applied_to_the_stored_booking_and_reserved_state_is_kept(
    runtime: HookRuntime, engine: AsyncEngine
) -> None:
    def answer(request: Received) -> Reply:
        booking = verify("jws", request.headers, request.body, SECRET).payload
        assert booking["state"] == "requested"  # the guard sees the state before the change
        return Reply.json({"patch": {"customer": {"tier": "gold"}}})

    def tamper(_request: Received) -> Reply:
        return Reply.json({"patch": {"state": "cancelled", "customer": {"email": None}}})

    async with LoopbackReceiver(answer) as guard, LoopbackReceiver(tamper) as other:
        await subscribe(runtime, guard, "before_confirmation")
        await subscribe(runtime, other, "before_confirmation")
        await send(engine, runtime, "confirm")

        booking = await stored(engine)
        assert booking.state == "confirmed"
        assert booking.customer == {"email": "a@example.com", "tier": "gold"}
        assert await state_changes(runtime) == 0  # no registration for it: no delivery


@pytest.mark.parametrize("engine_name", ["sqlite"])
async def test_send_without_session_is_refused_before_the_state_changes(
    runtime: HookRuntime, engine: AsyncEngine
) -> None:
    async with AsyncSession(engine) as session:
        booking = await session.get_one(Booking, "b1")
        machine = BookingMachine(model=booking, listeners=[hooks_for(runtime)])
        with pytest.raises(HookRuntimeError, match="session="):
            await machine.send("cancel")
        assert booking.state == "requested"
