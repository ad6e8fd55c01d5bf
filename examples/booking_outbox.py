"""A booking workflow with a transactional outbox: the booking row and its
`booking_state_changed` event commit together or not at all, and a worker delivers
the event (a JWS body, as seed 001 receivers expect) in the background.

Run: python examples/booking_outbox.py
"""

from __future__ import annotations

import tempfile

import anyio
from sqlalchemy import Column, MetaData, String, Table, insert
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from hookruntime import HookRuntime
from hookruntime.receiver import Deduplicator, verify
from hookruntime.testing import LoopbackReceiver, Received, Reply, eventually

SECRET = "signature_secret"
metadata = MetaData()
bookings = Table(
    "bookings", metadata, Column("id", String, primary_key=True), Column("state", String)
)
seen = Deduplicator()
handled: list[dict[str, object]] = []


def receiver(request: Received) -> Reply:
    message = verify("jws", request.headers, request.body, SECRET)
    if seen.first(message.event_id):  # delivery is at-least-once: dedupe by event id
        handled.append(message.payload)
    return Reply(200)


async def confirm(engine: object, runtime: HookRuntime, booking_id: str, fail: bool) -> None:
    doc = {
        "booking": {"id": booking_id, "state": "confirmed"},
        "transition": {"name": "confirm", "from": "requested", "to": "confirmed"},
    }
    async with AsyncSession(engine) as session, session.begin():  # type: ignore[arg-type]
        await session.execute(insert(bookings).values(id=booking_id, state="confirmed"))
        await runtime.emit(
            "booking_state_changed", doc, org="acme", key=booking_id, session=session
        )
        if fail:
            raise RuntimeError("payment failed: the booking and its event roll back together")


async def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/app.db"
        engine = create_async_engine(f"sqlite+aiosqlite:///{folder}/app.db")
        async with (
            LoopbackReceiver(receiver) as rx,
            HookRuntime(url, allow_private_targets=True) as runtime,
        ):
            async with engine.begin() as conn:
                await conn.run_sync(metadata.create_all)
            await runtime.registrations.create(
                org="acme",
                topics=["booking_state_changed"],
                url=rx.url,
                secret=SECRET,
                ordered=True,
            )
            await confirm(engine, runtime, "booking_1", fail=False)
            try:
                await confirm(engine, runtime, "booking_2", fail=True)
            except RuntimeError as exc:
                print("rolled back:", exc)
            await eventually(lambda: handled)
            await anyio.sleep(0.2)
            print("delivered:", [p["booking"]["id"] for p in handled])  # type: ignore[index]
            assert [p["booking"]["id"] for p in handled] == ["booking_1"]  # type: ignore[index]
        await engine.dispose()


if __name__ == "__main__":
    anyio.run(main)
