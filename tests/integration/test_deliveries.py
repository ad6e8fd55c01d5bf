"""runtime.deliveries (queue/deliveries.py): dead letters listed and replayed, one org's
deliveries hidden from another, pruning; on SQLite and PostgreSQL."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest
from sqlalchemy import text

from hookruntime import ConflictError, HookRuntime, ValidationError
from hookruntime.store.models import DELIVERIES, EVENTS
from hookruntime.testing import LoopbackReceiver, Reply, eventually

pytestmark = pytest.mark.anyio
PUNCH = {"punch": {"id": 2, "punch_type": "IN"}}


async def test_dead_deliveries_are_listed_and_replayed(open_runtime) -> None:
    healthy = False
    async with (
        LoopbackReceiver(lambda _r: Reply() if healthy else Reply(500)) as receiver,
        open_runtime() as runtime,
    ):
        reg = await runtime.registrations.create(
            org="acme", topics=["punch.create"], url=receiver.url, max_attempts=1
        )
        await runtime.emit_many("punch.create", [PUNCH] * 4, org="acme")
        dead = await eventually(lambda: _all(runtime.deliveries.list(org="acme", status="dead"), 4))
        healthy = True
        one = await runtime.deliveries.retry(dead[0].id, org="acme")
        assert one.status == "pending" and one.attempts == 0
        await eventually(lambda: _all(runtime.deliveries.list(org="acme", status="delivered"), 1))
        with pytest.raises(ConflictError, match="is delivering"):
            await _retry_in_flight(runtime, dead[1].id)
        progress: list[tuple[int, int]] = []
        retried = await runtime.deliveries.retry_many(
            org="acme",
            registration_id=reg.id,
            progress=lambda done, total: progress.append((done, total)),
        )
        assert retried == 3 and progress[-1] == (3, 3)
        await eventually(lambda: _all(runtime.deliveries.list(org="acme", status="delivered"), 4))
        assert len(receiver.received) == 8


async def _all(listing, n: int):  # type: ignore[no-untyped-def]
    items = await listing
    return items if len(items) == n else None


async def _retry_in_flight(runtime: HookRuntime, delivery_id: str) -> None:
    async with runtime.database.engine.begin() as conn:
        await conn.execute(
            text(f"UPDATE {DELIVERIES.fullname} SET status='delivering' WHERE id=:id"),
            {"id": delivery_id},
        )
    try:
        await runtime.deliveries.retry(delivery_id, org="acme")
    finally:
        async with runtime.database.engine.begin() as conn:
            await conn.execute(
                text(f"UPDATE {DELIVERIES.fullname} SET status='dead' WHERE id=:id"),
                {"id": delivery_id},
            )


async def test_another_orgs_delivery_is_not_found(open_runtime) -> None:
    from hookruntime import NotFoundError

    async with open_runtime(workers=0) as runtime:
        await runtime.registrations.create(
            org="acme", topics=["punch.create"], url="https://a.example/h"
        )
        await runtime.emit("punch.create", PUNCH, org="acme")
        (delivery,) = await runtime.deliveries.list(org="acme")
        with pytest.raises(NotFoundError):
            await runtime.deliveries.get(delivery.id, org="globex")
        with pytest.raises(NotFoundError):
            await runtime.deliveries.retry(delivery.id, org="globex")
        assert await runtime.deliveries.list(org="globex") == []
        with pytest.raises(ValidationError, match="unknown status"):
            await runtime.deliveries.list(org="acme", status="lost")


async def test_prune_removes_old_delivered_events_and_keeps_dead_ones(open_runtime, count) -> None:
    async with (
        LoopbackReceiver(lambda r: Reply(500 if r.json()["punch"]["id"] else 200)) as rx,
        open_runtime() as runtime,
    ):
        await runtime.registrations.create(
            org="acme", topics=["punch.create"], url=rx.url, max_attempts=1
        )
        await runtime.emit_many(
            "punch.create", [{"punch": {"id": i}} for i in range(2)], org="acme"
        )
        await eventually(lambda: _all(runtime.deliveries.list(org="acme"), 2))
        await eventually(lambda: count(runtime, DELIVERIES, status="delivered"))
        await eventually(lambda: count(runtime, DELIVERIES, status="dead"))
        assert await runtime.deliveries.prune(older_than=3600) == 0
        await anyio.sleep(0.05)
        assert await runtime.deliveries.prune(older_than=0.01) >= 1
        remaining = await runtime.deliveries.list(org="acme")
        assert [d.status for d in remaining] == ["dead"]
        assert await count(runtime, EVENTS, topic="punch.create") == 1
