"""An emit whose deliveries go straight to the in-process worker wakes no claim; one
that leaves deliveries pending (ordered, or beyond the worker's room) still does."""

from __future__ import annotations

import time

import anyio
import pytest

from hookruntime import HookRuntime
from hookruntime.testing import LoopbackReceiver, eventually

pytestmark = pytest.mark.anyio
PUNCH = {"punch": {"id": 1, "punch_type": "IN", "person": {"id": 1, "first_name": "R"}}}


async def test_emits_handed_straight_to_the_worker_wake_no_empty_claims(
    database_url: str, master_key: str
) -> None:
    async with (
        LoopbackReceiver() as receiver,
        HookRuntime(database_url, master_key=master_key, allow_private_targets=True) as rt,
    ):
        await rt.registrations.create(org="acme", topics=["punch.create"], url=receiver.url)
        (worker,) = rt.workers
        before = worker.empty_claims
        for _ in range(50):
            await rt.emit("punch.create", PUNCH, org="acme")
        await eventually(lambda: worker.delivered >= 50, interval=0.01)
        # Only the idle poll (once a second) may look and find nothing.
        assert worker.empty_claims - before <= 3
        assert len(receiver.received) == 50


async def test_an_ordered_delivery_is_claimed_at_once_not_at_the_next_poll(
    database_url: str, master_key: str
) -> None:
    async with (
        LoopbackReceiver() as receiver,
        HookRuntime(database_url, master_key=master_key, allow_private_targets=True) as rt,
    ):
        await rt.registrations.create(
            org="acme", topics=["punch.create"], url=receiver.url, ordered=True
        )
        await anyio.sleep(0.2)  # the worker's first claim is done; it sleeps out its poll
        started = time.perf_counter()
        await rt.emit("punch.create", PUNCH, org="acme", key="k")
        await eventually(lambda: receiver.received, interval=0.005)
        assert time.perf_counter() - started < 0.6  # the poll is 1 s
