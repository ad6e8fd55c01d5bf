"""The worker's end of a sender process (queue/sender_link.py): a killed sender is replaced
and the work it held is redone."""

from __future__ import annotations

import os
import signal

import pytest

from hookruntime.store.models import DELIVERIES
from hookruntime.testing import LoopbackReceiver, Reply, eventually

pytestmark = pytest.mark.anyio
PUNCH = {"punch": {"id": 2, "punch_type": "IN"}}


async def test_a_killed_sender_process_is_replaced_and_its_work_redone(open_runtime, count) -> None:
    async with (
        LoopbackReceiver(lambda _r: Reply(delay=0.05)) as receiver,
        open_runtime(sender_process="1", lease="2", concurrency="4") as runtime,
    ):
        await runtime.registrations.create(org="acme", topics=["punch.create"], url=receiver.url)
        ids = await runtime.emit_many("punch.create", [PUNCH] * 60, org="acme")
        await eventually(lambda: len(receiver.received) >= 10)
        worker = runtime.workers[0]
        first = worker.sender_pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        await eventually(lambda: worker.sender_pid not in (None, first), timeout=10)

        async def all_delivered() -> bool:
            return await count(runtime, DELIVERIES, status="delivered") == 60

        await eventually(all_delivered, timeout=30)
        assert {r.headers["x-servicehook-id"] for r in receiver.received} == set(ids)
