"""Recording outcomes (queue/records.py): a registration's health, disabled on a 410 or a
failing streak past the threshold, its org told with webhook.disabled; on SQLite and PostgreSQL."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest
from sqlalchemy import text

from hookruntime.store.models import REGISTRATIONS
from hookruntime.testing import LoopbackReceiver, Received, Reply, eventually

pytestmark = pytest.mark.anyio
PUNCH = {"punch": {"id": 2, "punch_type": "IN"}}
#: For tests of what the lanes do: run them in the worker's process and in a sender process.
SENDING = pytest.mark.parametrize("sending", ["0", "1"], ids=["one-process", "sender-process"])


@SENDING
async def test_410_disables_the_registration_and_holds_its_other_deliveries(
    open_runtime, sending: str
) -> None:
    gone = True

    def answer(_r: Received) -> Reply:
        return Reply(410) if gone else Reply()

    async with (
        LoopbackReceiver(answer) as receiver,
        LoopbackReceiver() as ops,
        open_runtime(sender_process=sending) as runtime,
    ):
        reg = await runtime.registrations.create(
            org="acme", topics=["punch.create"], url=receiver.url, ordered=True
        )
        await runtime.registrations.create(org="acme", topics=["webhook.disabled"], url=ops.url)
        await runtime.emit_many("punch.create", [PUNCH] * 3, org="acme", keys=["k"] * 3)
        notice = await eventually(lambda: ops.received)
        assert notice[0].json()["type"] == "webhook.disabled"
        assert notice[0].json()["data"]["webhook_id"] == reg.id
        assert "410" in notice[0].json()["data"]["reason"]
        disabled = await runtime.registrations.get(reg.id, org="acme")
        assert not disabled.active and "410" in (disabled.disabled_reason or "")
        await anyio.sleep(0.3)
        assert len(receiver.received) == 1
        assert len(await runtime.deliveries.list(org="acme", status="dead")) == 1
        held = await runtime.deliveries.list(org="acme", status="pending")
        assert len(held) == 2
        assert all(d.next_at is None for d in held), "held work stays out of the claim's scan"
        gone = False
        await runtime.registrations.update(reg.id, org="acme", rev=disabled.rev, active=True)
        await eventually(lambda: len(receiver.received) == 3)


async def test_a_registration_failing_past_the_threshold_is_disabled(open_runtime) -> None:
    async with (
        LoopbackReceiver(lambda _r: Reply(503)) as receiver,
        LoopbackReceiver() as ops,
        open_runtime(disable_after_failures="4", disable_after="0") as runtime,
    ):
        reg = await runtime.registrations.create(
            org="acme", topics=["punch.create"], url=receiver.url, retry_schedule=[0.05] * 10
        )
        await runtime.registrations.create(org="acme", topics=["webhook.disabled"], url=ops.url)
        await runtime.emit("punch.create", PUNCH, org="acme")
        notice = await eventually(lambda: ops.received)
        assert notice[0].json()["data"]["webhook_id"] == reg.id
        assert not (await runtime.registrations.get(reg.id, org="acme")).active
        assert 4 <= len(receiver.received) <= 5


async def test_a_success_ends_a_failing_streak(open_runtime) -> None:
    answers: list[int] = []

    def answer(_r: Received) -> Reply:
        return Reply(answers.pop(0) if answers else 200)

    async with (
        LoopbackReceiver(answer) as receiver,
        open_runtime(disable_after_failures="4", disable_after="0") as runtime,
    ):
        reg = await runtime.registrations.create(
            org="acme", topics=["punch.create"], url=receiver.url, retry_schedule=[0.05] * 5
        )
        query = text(
            "SELECT consecutive_failures, failing_since "
            f"FROM {REGISTRATIONS.fullname} WHERE id = :id"
        )

        async def streak() -> tuple[int, float | None]:
            async with runtime.database.engine.connect() as conn:
                row = (await conn.execute(query, {"id": reg.id})).one()
            return row[0], row[1]

        async def ended() -> bool:
            return await streak() == (0, None)

        # Three failures, then a success; twice: six failures, never four in a row.
        for round_ in range(2):
            answers[:] = [503, 503, 503]
            await runtime.emit("punch.create", PUNCH, org="acme")
            await eventually(lambda n=round_: len(receiver.received) == 4 * (n + 1))
            await eventually(ended, timeout=5)
        assert (await runtime.registrations.get(reg.id, org="acme")).active
