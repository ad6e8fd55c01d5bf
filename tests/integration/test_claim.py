"""Claiming (queue/claim.py): leases that lapse, excluded registrations, deliveries held for
an inactive registration or behind an earlier one of the same key; on SQLite and PostgreSQL."""

from __future__ import annotations

import time

import pytest

from hookruntime.queue.claim import claim
from hookruntime.testing import LoopbackReceiver, Received, Reply, eventually

pytestmark = pytest.mark.anyio
PUNCH = {"punch": {"id": 2, "punch_type": "IN"}}
#: For tests of what the lanes do: run them in the worker's process and in a sender process.
SENDING = pytest.mark.parametrize("sending", ["0", "1"], ids=["one-process", "sender-process"])


async def test_disabling_by_hand_holds_deliveries_and_enabling_resumes_them(
    open_runtime,
) -> None:
    async with LoopbackReceiver() as receiver, open_runtime(workers=0) as runtime:
        reg = await runtime.registrations.create(
            org="acme", topics=["punch.create"], url=receiver.url
        )
        await runtime.emit_many("punch.create", [PUNCH] * 3, org="acme")
        off = await runtime.registrations.update(reg.id, org="acme", rev=reg.rev, active=False)
        held = await runtime.deliveries.list(org="acme", status="pending")
        assert [d.next_at for d in held] == [None] * 3
        assert await claim(runtime.database, "w", 10, time.time(), lease=30) == []
        await runtime.registrations.update(reg.id, org="acme", rev=off.rev, active=True)
        resumed = await runtime.deliveries.list(org="acme", status="pending")
        assert all(d.next_at is not None for d in resumed)
        assert len(await claim(runtime.database, "w", 10, time.time() + 1, lease=30)) == 3


@SENDING
async def test_ordered_registrations_keep_emit_order_per_key_under_failures(
    open_runtime, sending: str
) -> None:
    failures = {"first": 2}

    def flaky(request: Received) -> Reply:
        if request.json()["punch"]["id"] == 0 and failures["first"]:
            failures["first"] -= 1
            return Reply(500)
        return Reply()

    async with (
        LoopbackReceiver(flaky) as ordered,
        LoopbackReceiver() as loose,
        open_runtime(sender_process=sending) as runtime,
    ):
        await runtime.registrations.create(
            org="acme",
            topics=["punch.create"],
            url=ordered.url,
            ordered=True,
            retry_schedule=[0.2] * 4,
        )
        await runtime.registrations.create(org="acme", topics=["punch.create"], url=loose.url)
        items = [{"punch": {"id": i}} for i in range(6)]
        await runtime.emit_many("punch.create", items, org="acme", keys=["b1"] * 6)
        await eventually(lambda: len(loose.received) == 6)
        assert len(ordered.received) < 6 + 2  # the ordered one is still waiting on #0
        await eventually(lambda: len(ordered.received) == 8)
        sequence = [r.json()["punch"]["id"] for r in ordered.received]
        assert sequence == [0, 0, 0, 1, 2, 3, 4, 5]


async def test_a_lapsed_lease_is_claimed_again(open_runtime) -> None:
    async with LoopbackReceiver() as receiver:
        async with open_runtime(workers=0) as runtime:
            await runtime.registrations.create(
                org="acme", topics=["punch.create"], url=receiver.url
            )
            event_id = await runtime.emit("punch.create", PUNCH, org="acme")
            claimed = await claim(runtime.database, "dead-worker", 10, time.time(), lease=0.3)
            assert [c.event_id for c in claimed] == [event_id]
            assert await claim(runtime.database, "other", 10, time.time(), lease=0.3) == []
        async with open_runtime():  # a worker starts; the lease lapses; it takes over
            await eventually(lambda: receiver.received, timeout=5)
        assert receiver.received[0].headers["x-servicehook-id"] == event_id


async def test_a_claim_skips_excluded_registrations_and_is_due_again_at_lease_end(
    open_runtime,
) -> None:
    async with open_runtime(workers=0) as runtime:
        rids = [
            (
                await runtime.registrations.create(
                    org="acme", topics=["punch.create"], url=f"http://127.0.0.1:9/{index}"
                )
            ).id
            for index in range(4)
        ]
        await runtime.emit("punch.create", PUNCH, org="acme")
        now = time.time()
        # Three excluded: the statement pads the list to four with the first id.
        claimed = await claim(runtime.database, "w", 10, now, lease=30, exclude=rids[:3])
        assert [c.registration_id for c in claimed] == [rids[3]]
        assert claimed[0].lease_until == pytest.approx(now + 30, abs=0.01)
        view = await runtime.deliveries.get(claimed[0].id, org="acme")
        assert view.status == "delivering"
        # Due again only if its lease lapses.
        assert view.next_at == pytest.approx(now + 30, abs=0.01)
        rest = await claim(runtime.database, "w", 10, now, lease=30)
        assert sorted(c.registration_id for c in rest) == sorted(rids[:3])
        assert await claim(runtime.database, "w", 10, now + 29, lease=30) == []
        again = await claim(runtime.database, "w2", 10, now + 31, lease=30)
        assert len(again) == 4
