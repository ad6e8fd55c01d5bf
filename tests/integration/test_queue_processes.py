"""Real `hookruntime worker` processes, sending from their own process or from a sender
process: SIGKILL mid-run loses nothing (and takes the sender process with it); several
workers on PostgreSQL share one backlog without sending anything twice; SIGTERM is
graceful."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import anyio
import pytest
from sqlalchemy import func, select

from hookruntime import HookRuntime
from hookruntime.store import Database
from hookruntime.store.models import DELIVERIES
from hookruntime.testing import LoopbackReceiver, Received, Reply, eventually

pytestmark = pytest.mark.anyio
SENDING = pytest.mark.parametrize(
    "sending",
    [["--no-sender-process"], ["--sender-process"]],
    ids=["one-process", "sender-process"],
)


@contextmanager
def worker_process(
    database_url: str, master_key: str, *args: str
) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, "HOOKRUNTIME_MASTER_KEY": master_key}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hookruntime.cli",
            "worker",
            "--database-url",
            database_url,
            "--allow-private-targets",
            *args,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


def event_ids(received: list[Received]) -> Counter[str]:
    return Counter(r.headers["x-servicehook-id"] for r in received)


async def backlog(database_url: str, master_key: str, url: str, n: int) -> list[str]:
    async with HookRuntime(
        database_url, workers=0, master_key=master_key, allow_private_targets=True
    ) as runtime:
        await runtime.registrations.create(org="acme", topics=["punch.create"], url=url)
        return await runtime.emit_many(
            "punch.create", [{"punch": {"id": i}} for i in range(n)], org="acme"
        )


async def statuses(database_url: str, master_key: str) -> Counter[str]:
    async with (
        HookRuntime(database_url, workers=0, master_key=master_key) as runtime,
        runtime.database.engine.connect() as conn,
    ):
        rows = (await conn.execute(select(DELIVERIES.c.status))).scalars().all()
    return Counter(rows)


def children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as listed:
        return [int(child) for child in listed.read().split()]


def gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as status:
            return any(line.startswith("State:\tZ") for line in status)
    except FileNotFoundError:
        return True


@SENDING
async def test_a_killed_worker_loses_nothing(
    database_url: str, master_key: str, sending: list[str]
) -> None:
    async with LoopbackReceiver(lambda _r: Reply(delay=0.005)) as receiver:
        emitted = await backlog(database_url, master_key, receiver.url, 400)
        with worker_process(database_url, master_key, "--lease", "2", *sending) as first:
            await eventually(lambda: len(receiver.received) >= 60, timeout=30)
            senders = children(first.pid)
            assert len(senders) == (1 if "--sender-process" in sending else 0)
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
            # Its sender process notices and exits rather than send on unrecorded.
            await eventually(lambda: all(gone(pid) for pid in senders), timeout=10)
        killed_at = len(receiver.received)
        assert killed_at < 400, "the worker finished before it could be killed"
        with worker_process(database_url, master_key, "--lease", "2", *sending):
            await eventually(lambda: set(event_ids(receiver.received)) >= set(emitted), timeout=60)
            await eventually(lambda: _all_delivered(database_url, master_key, 400), timeout=30)


async def _delivered(database: Database, n: int) -> bool:
    query = select(func.count()).where(DELIVERIES.c.status == "delivered")
    async with database.engine.connect() as conn:
        return (await conn.execute(query)).scalar_one() == n


async def _all_delivered(database_url: str, master_key: str, n: int) -> bool:
    return (await statuses(database_url, master_key))["delivered"] == n


async def test_several_workers_share_one_postgresql_backlog(pg_url: str, master_key: str) -> None:
    # Slow enough answers (16 lanes: ~300/s per worker) that no worker can drain the
    # backlog alone before the others have started.
    async with LoopbackReceiver(lambda _r: Reply(delay=0.05)) as receiver:
        emitted = await backlog(pg_url, master_key, receiver.url, 900)
        with (
            worker_process(pg_url, master_key, "--concurrency", "16"),
            worker_process(pg_url, master_key, "--concurrency", "16"),
            worker_process(pg_url, master_key, "--concurrency", "16"),
        ):
            await eventually(lambda: _all_delivered(pg_url, master_key, 900), timeout=90)
        seen = event_ids(receiver.received)
        assert set(seen) == set(emitted)
        assert max(seen.values()) == 1, "a delivery was sent twice without a lease expiring"
        async with (
            HookRuntime(pg_url, workers=0, master_key=master_key) as runtime,
            runtime.database.engine.connect() as conn,
        ):
            workers = Counter((await conn.execute(select(DELIVERIES.c.worker))).scalars().all())
        assert len(workers) >= 2, f"one worker did all the work: {workers}"


@SENDING
async def test_sigterm_finishes_or_releases_in_flight_work(
    database_url: str, master_key: str, sending: list[str]
) -> None:
    async with LoopbackReceiver(lambda _r: Reply(delay=0.5)) as receiver:
        await backlog(database_url, master_key, receiver.url, 50)
        with worker_process(database_url, master_key, "--concurrency", "4", *sending) as worker:
            await eventually(lambda: receiver.received, timeout=30)
            # Signalled as a terminal or a service manager does: the whole group.
            senders = children(worker.pid)
            for pid in [worker.pid, *senders]:
                os.kill(pid, signal.SIGTERM)
            assert await anyio.to_thread.run_sync(lambda: worker.wait(timeout=30)) == 0
            assert all(gone(pid) for pid in senders)
        counts = await statuses(database_url, master_key)
        assert counts["delivering"] == 0
        assert counts["delivered"] >= 1 and sum(counts.values()) == 50


@SENDING
async def test_a_killed_worker_is_recovered_in_seconds_with_the_default_lease(
    database_url: str, master_key: str, sending: list[str]
) -> None:
    # Its heartbeat stops with it: the deliveries it held are taken back ~5 s later, not
    # when their 60 s leases run out. Sent twice is only what it had in flight: sending
    # from its own process, at most --concurrency requests under way or answered and not
    # yet recorded; from a sender process, also the answers on their way back to be
    # recorded (one more round of requests here, the answers taking far less than 50 ms).
    concurrency = 16
    bound = concurrency * (2 if "--sender-process" in sending else 1)
    async with LoopbackReceiver(lambda _r: Reply(delay=0.05)) as receiver:
        emitted = await backlog(database_url, master_key, receiver.url, 600)
        args = ["--concurrency", str(concurrency), *sending]
        with worker_process(database_url, master_key, *args) as first:
            await eventually(lambda: len(receiver.received) >= 150, timeout=30)
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        killed_at = len(receiver.received)
        assert killed_at < 600, "the worker finished before it could be killed"
        database = Database(database_url)
        try:
            with worker_process(database_url, master_key, *args):
                restarted = time.monotonic()
                await eventually(lambda: _delivered(database, 600), timeout=10)
                recovered = time.monotonic() - restarted
        finally:
            await database.dispose()
        seen = event_ids(receiver.received)
        assert set(seen) == set(emitted)
        duplicates = sum(seen.values()) - len(seen)
        print(f"recovered in {recovered:.1f} s; {duplicates} sent twice; killed at {killed_at}")
        assert duplicates <= bound
