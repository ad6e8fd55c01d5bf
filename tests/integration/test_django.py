"""examples/django_host: a Django view saves a booking and emits in
``transaction.atomic()`` through Django's own connection, on SQLite and PostgreSQL. A
worker in another process (this test's) delivers it once Django commits; an exception
inside atomic() leaves neither booking nor event, and sends nothing."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import anyio
import pytest
from sqlalchemy import func, select, text

from hookruntime import HookRuntime
from hookruntime.store.models import EVENTS
from hookruntime.testing import LoopbackReceiver, Received, Reply, eventually

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]


async def book(database_url: str, master_key: str, guest: str, *flags: str) -> tuple[int, str]:
    """Run the Django project in a process of its own; its exit code and answer."""
    env = {
        **os.environ,
        "HOOKRUNTIME_DATABASE_URL": database_url,
        "HOOKRUNTIME_MASTER_KEY": master_key,
        "HOOKRUNTIME_WORKERS": "0",  # it only emits: the test's worker delivers
    }
    done = await anyio.run_process(
        [sys.executable, "-m", "examples.django_host", "book", guest, *flags],
        env=env,
        cwd=ROOT,
        check=False,
    )
    return done.returncode, done.stdout.decode()


def _posts(receiver: LoopbackReceiver) -> list[Received]:
    return [r for r in receiver.received if r.method == "POST"]


async def test_a_django_booking_and_its_event_commit_together(
    database_url: str, master_key: str
) -> None:
    async with (
        LoopbackReceiver(lambda _r: Reply(204)) as receiver,
        HookRuntime(database_url, master_key=master_key, allow_private_targets=True) as runtime,
    ):
        await runtime.registrations.create(
            org="acme", topics=["booking_state_changed"], url=receiver.url, profile="standard"
        )
        code, answer = await book(database_url, master_key, "bob", "--fail")
        assert (code, json.loads(answer.split(" ", 1)[1])) == (
            1,
            {"title": "the payment was declined"},
        )

        code, answer = await book(database_url, master_key, "alice")
        assert code == 0, answer
        finished = time.time()
        booking = json.loads(answer.split(" ", 1)[1])
        await eventually(lambda: len(_posts(receiver)) >= 1, timeout=10)
        # The committed booking arrives, promptly (the process had ended before it);
        # the failed one never does.
        await anyio.sleep(0.3)
        [post] = _posts(receiver)
        assert post.at - finished < 0.5
        assert post.json()["data"]["booking"] == {"id": str(booking["id"]), "state": "requested"}
        async with runtime.database.engine.connect() as conn:
            guests = (await conn.execute(text("SELECT guest FROM django_host_booking"))).all()
            events = (
                await conn.execute(
                    select(func.count()).where(EVENTS.c.topic == "booking_state_changed")
                )
            ).scalar_one()
        assert [g for (g,) in guests] == ["alice"]
        assert events == 1
