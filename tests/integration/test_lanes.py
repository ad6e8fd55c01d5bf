"""Sender lanes (queue/lanes.py): a cap per registration, so one slow receiver cannot starve
the rest; in the worker's process and in a sender process."""

from __future__ import annotations

import time

import anyio
import anyio.lowlevel
import pytest

from hookruntime.testing import LoopbackReceiver, Received, Reply, eventually

pytestmark = pytest.mark.anyio
PUNCH = {"punch": {"id": 2, "punch_type": "IN"}}
#: For tests of what the lanes do: run them in the worker's process and in a sender process.
SENDING = pytest.mark.parametrize("sending", ["0", "1"], ids=["one-process", "sender-process"])


@SENDING
async def test_one_slow_receiver_cannot_starve_the_rest(open_runtime, sending: str) -> None:
    busy = 0
    peak = 0

    async def slow(_r: Received) -> Reply:
        nonlocal busy, peak
        busy += 1
        peak = max(peak, busy)
        await anyio.sleep(0.3)
        busy -= 1
        return Reply()

    async with (
        LoopbackReceiver(slow) as sluggish,
        LoopbackReceiver() as quick,
        open_runtime(
            registration_concurrency="2", concurrency="8", sender_process=sending
        ) as runtime,
    ):
        await runtime.registrations.create(org="acme", topics=["punch.create"], url=sluggish.url)
        await runtime.registrations.create(org="acme", topics=["visit.checkin"], url=quick.url)
        await runtime.emit_many("punch.create", [PUNCH] * 12, org="acme")
        await anyio.sleep(0.05)
        started = time.monotonic()
        await runtime.emit_many("visit.checkin", [{"visit": {"id": 1}}] * 20, org="acme")
        await eventually(lambda: len(quick.received) == 20)
        assert time.monotonic() - started < 1.0  # the slow one needs 1.8 s for its 12
        assert peak <= 2
        await eventually(lambda: len(sluggish.received) == 12)
