"""examples/booking_service driven over HTTP (httpx against the ASGI app), with its
hooks' receivers on loopback and one database shared by the service and hookruntime."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from hookruntime import HookRuntime
from hookruntime.receiver import verify
from hookruntime.testing import LoopbackReceiver, Received, Reply, eventually

sys.path.insert(0, str(Path(__file__).parents[2] / "examples"))
from booking_service.app import create_app, served
from booking_service.models import Base, Booking, host_url

pytestmark = pytest.mark.anyio
SECRET = "signature_secret"
ORG = "acme"
NEW = {
    "customer": {"id": "c1", "email": "john@doe.com"},
    "service": {"id": "svc_osce", "name": "OSCE practice"},
    "start": "2026-02-03T09:00:00Z",
    "end": "2026-02-03T10:00:00Z",
}


@pytest.fixture
def workers() -> int:
    return 0  # delivery only where a test waits for it (see test_workflow)


@pytest.fixture
async def runtime(database_url: str, master_key: str, workers: int) -> AsyncIterator[HookRuntime]:
    async with HookRuntime(
        database_url, workers=workers, master_key=master_key, allow_private_targets=True
    ) as opened:
        yield opened


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(host_url(database_url))
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield engine
    await engine.dispose()


@pytest.fixture
async def client(runtime: HookRuntime, engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(runtime, engine, org=ORG)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://booking.test") as c:
        yield c


async def subscribe(runtime: HookRuntime, rx: LoopbackReceiver, topic: str) -> None:
    await runtime.registrations.create(
        org=ORG, topics=[topic], url=rx.url, secret=SECRET, retry_schedule=[0.05] * 3
    )


async def book(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.post("/bookings", json=NEW)
    assert response.status_code == 201, response.text
    booking: dict[str, Any] = response.json()
    assert booking["state"] == "requested"
    return booking


async def state_changes(runtime: HookRuntime) -> int:
    return len(await runtime.deliveries.list(org=ORG, topic="booking_state_changed"))


async def test_denied_confirmation_answers_409_with_user_message_and_changes_nothing(
    runtime: HookRuntime, client: httpx.AsyncClient
) -> None:
    deny = {"decision": "deny", "reason": "room 12 closed", "user_message": "Pick another day."}
    async with LoopbackReceiver(lambda _r: Reply.json(deny)) as guard, LoopbackReceiver() as rx:
        await subscribe(runtime, guard, "before_confirmation")
        await subscribe(runtime, rx, "booking_state_changed")
        booking = await book(client)

        response = await client.post(f"/bookings/{booking['id']}/confirm")

        assert response.status_code == 409
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["user_message"] == "Pick another day."
        assert (await client.get(f"/bookings/{booking['id']}")).json() == booking
        assert await state_changes(runtime) == 0


async def test_allowed_confirmation_stores_the_merged_patch_with_the_new_state(
    runtime: HookRuntime, client: httpx.AsyncClient
) -> None:
    def allow(request: Received) -> Reply:
        sent = verify("jws", request.headers, request.body, SECRET).payload
        assert sent["state"] == "requested"
        return Reply.json({"patch": {"notes": "bring ID", "customer": {"tier": "gold"}}})

    async with LoopbackReceiver(allow) as guard, LoopbackReceiver() as rx:
        await subscribe(runtime, guard, "before_confirmation")
        await subscribe(runtime, rx, "booking_state_changed")
        booking = await book(client)

        response = await client.post(f"/bookings/{booking['id']}/confirm")

        assert response.status_code == 200, response.text
        stored = (await client.get(f"/bookings/{booking['id']}")).json()
        assert stored == response.json()
        assert stored["state"] == "confirmed"
        assert stored["notes"] == "bring ID"
        assert stored["customer"] == {"id": "c1", "email": "john@doe.com", "tier": "gold"}
        assert await state_changes(runtime) == 1


@pytest.mark.parametrize("workers", [1])
async def test_each_transition_reaches_the_receiver_as_booking_state_changed(
    runtime: HookRuntime, client: httpx.AsyncClient
) -> None:
    async with LoopbackReceiver() as rx:
        await subscribe(runtime, rx, "booking_state_changed")
        booking = await book(client)

        assert (await client.post(f"/bookings/{booking['id']}/confirm")).status_code == 200
        assert (await client.post(f"/bookings/{booking['id']}/cancel")).status_code == 200

        await eventually(lambda: len(rx.received) >= 2)
        payloads = [verify("jws", r.headers, r.body, SECRET).payload for r in rx.received]
        assert sorted((p["transition"]["name"], p["booking"]["state"]) for p in payloads) == [
            ("cancel", "cancelled"),
            ("confirm", "confirmed"),
        ]
        assert {p["booking"]["id"] for p in payloads} == {booking["id"]}


async def test_booking_changed_while_hooks_answer_is_not_confirmed_and_emits_nothing(
    runtime: HookRuntime, client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    async def edit_meanwhile(request: Received) -> Reply:
        booking_id = verify("jws", request.headers, request.body, SECRET).payload["id"]
        async with AsyncSession(engine) as session, session.begin():
            await session.execute(
                update(Booking)
                .where(Booking.id == booking_id)
                .values(notes="moved", version=Booking.version + 1)
            )
        return Reply(204)

    async with LoopbackReceiver(edit_meanwhile) as guard:
        await subscribe(runtime, guard, "before_confirmation")
        await subscribe(runtime, guard, "booking_state_changed")
        booking = await book(client)

        # The commit fails after the outbox write: the change and its event go together.
        response = await client.post(f"/bookings/{booking['id']}/confirm")

        assert response.status_code == 409, response.text
        assert response.json()["title"] == "Changed meanwhile"
        stored = (await client.get(f"/bookings/{booking['id']}")).json()
        assert (stored["state"], stored["notes"]) == ("requested", "moved")
        assert await state_changes(runtime) == 0


async def test_transition_from_the_wrong_state_or_unknown_booking_is_a_4xx_problem(
    client: httpx.AsyncClient,
) -> None:
    booking = await book(client)
    assert (await client.post(f"/bookings/{booking['id']}/complete")).status_code == 409
    assert (await client.post(f"/bookings/{booking['id']}/explode")).status_code == 404
    assert (await client.post("/bookings/nope/confirm")).status_code == 404
    invalid = await client.post("/bookings", json={"customer": "x"})
    assert invalid.status_code == 422
    assert invalid.headers["content-type"] == "application/problem+json"


async def test_served_service_opens_hookruntime_in_its_lifespan_and_mounts_its_dashboard(
    tmp_path: Path,
) -> None:
    from test_ui_mounted import serving

    url = f"sqlite:///{tmp_path / 'booking.db'}"
    app = served(url, org=ORG)
    async with serving(app) as base, httpx.AsyncClient(base_url=base) as http:
        created = await http.post("/bookings", json=NEW)  # the service's tables exist
        health = await http.get("/hooks/healthz")
        dashboard = await http.get("/hooks/ui/")
    assert created.status_code == 201 and created.json()["state"] == "requested"
    assert health.status_code == 200
    assert 'action="/hooks/ui/signin"' in dashboard.text
