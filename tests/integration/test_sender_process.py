"""A worker's sender process (``--sender-process``) can die, hang or fail to start, and
the worker goes on; a sender whose worker dies leaves without a traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import pytest
from test_queue_processes import backlog, children, event_ids, gone, statuses

import hookruntime.queue.sender_link as remote
from hookruntime import HookRuntime
from hookruntime.queue.lanes import Request, SendResult
from hookruntime.testing import LoopbackReceiver, Reply, eventually

pytestmark = pytest.mark.anyio


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: what is tested here is the two processes, not the database."""
    return f"sqlite:///{tmp_path / 'hooks.db'}"


@contextmanager
def sending_worker(
    database_url: str, master_key: str, stderr: Path, *args: str
) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, "HOOKRUNTIME_MASTER_KEY": master_key}
    with stderr.open("wb") as errors:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hookruntime.cli",
                "worker",
                "--database-url",
                database_url,
                "--allow-private-targets",
                "--sender-process",
                "--lease",
                "2",
                *args,
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=30)


async def a_new_sender(worker: subprocess.Popen[bytes], other_than: int | None) -> int:
    async def found() -> int | None:
        assert worker.poll() is None, "the worker exited"
        senders = [pid for pid in children(worker.pid) if pid != other_than and not gone(pid)]
        return senders[0] if senders else None

    return await eventually(found, timeout=30, interval=0.01)


async def all_delivered(database_url: str, master_key: str, n: int) -> bool:
    return (await statuses(database_url, master_key))["delivered"] == n


async def test_a_worker_outlives_its_sender_killed_again_and_again(
    database_url: str, master_key: str, tmp_path: Path
) -> None:
    async with LoopbackReceiver() as receiver:
        # Bodies large enough that a sender behind on its reading fills its socket.
        async with HookRuntime(
            database_url, workers=0, master_key=master_key, allow_private_targets=True
        ) as runtime:
            await runtime.registrations.create(
                org="acme", topics=["punch.create"], url=receiver.url
            )
            emitted = await runtime.emit_many(
                "punch.create",
                [{"punch": {"id": i, "note": "x" * 20_000}} for i in range(1500)],
                org="acme",
            )
        with sending_worker(database_url, master_key, tmp_path / "stderr") as worker:
            sender = await a_new_sender(worker, None)
            for round in range(6):
                count = len(receiver.received)
                await eventually(lambda: len(receiver.received) > count + 20, timeout=30)  # noqa: B023
                if round % 2:
                    # Behind on its reading, as on a busy machine: killed with requests
                    # unread in its socket and the worker blocked writing more.
                    os.kill(sender, signal.SIGSTOP)
                    await anyio.sleep(0.3)
                os.kill(sender, signal.SIGKILL)
                sender = await a_new_sender(worker, sender)
            await eventually(lambda: set(event_ids(receiver.received)) >= set(emitted), timeout=90)
            await eventually(lambda: all_delivered(database_url, master_key, 1500), timeout=30)
            assert worker.poll() is None, (tmp_path / "stderr").read_text()


async def test_a_hung_sender_is_replaced_and_the_worker_goes_on(
    database_url: str, master_key: str, tmp_path: Path
) -> None:
    async with LoopbackReceiver(lambda _r: Reply(delay=0.02)) as receiver:
        emitted = await backlog(database_url, master_key, receiver.url, 300)
        with sending_worker(database_url, master_key, tmp_path / "stderr") as worker:
            hung = await a_new_sender(worker, None)
            await eventually(lambda: receiver.received, timeout=30)
            os.kill(hung, signal.SIGSTOP)
            try:
                started = time.monotonic()
                await a_new_sender(worker, hung)
                assert time.monotonic() - started < 10
                await eventually(lambda: gone(hung), timeout=10)
            finally:
                if not gone(hung):
                    os.kill(hung, signal.SIGKILL)
            await eventually(lambda: set(event_ids(receiver.received)) >= set(emitted), timeout=60)
            await eventually(lambda: all_delivered(database_url, master_key, 300), timeout=30)
            assert worker.poll() is None


async def test_a_sender_dying_before_it_is_ready_does_not_stop_the_worker(
    tmp_path: Path, master_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first sender process exits before it ever reads its settings.
    marker = tmp_path / "started-once"
    dies_first = f"import os, pathlib; p = pathlib.Path({str(marker)!r})\n"
    dies_first += "if not p.exists(): p.touch(); os._exit(1)\n" + remote._ENTRY
    monkeypatch.setattr(remote, "_ENTRY", dies_first)
    async with (
        LoopbackReceiver() as receiver,
        HookRuntime(
            f"sqlite:///{tmp_path / 'hooks.db'}",
            master_key=master_key,
            allow_private_targets=True,
            sender_process=True,
        ) as runtime,
    ):
        assert marker.exists()
        await runtime.registrations.create(org="acme", topics=["punch.create"], url=receiver.url)
        event_id = await runtime.emit("punch.create", {"punch": {"id": 1}}, org="acme")
        await eventually(lambda: receiver.received, timeout=30)
        assert receiver.received[0].headers["x-servicehook-id"] == event_id


async def test_a_sender_leaves_quietly_when_its_worker_dies(
    database_url: str, master_key: str, tmp_path: Path
) -> None:
    stderr = tmp_path / "stderr"
    async with LoopbackReceiver() as receiver:
        await backlog(database_url, master_key, receiver.url, 3000)
        for _ in range(3):
            with sending_worker(database_url, master_key, stderr) as worker:
                sender = await a_new_sender(worker, None)
                count = len(receiver.received)
                # Killed while answers stream back: unread frames in its socket.
                await eventually(lambda: len(receiver.received) > count + 50, timeout=30)  # noqa: B023
                worker.send_signal(signal.SIGKILL)
                worker.wait(timeout=10)
                await eventually(lambda: gone(sender), timeout=10)  # noqa: B023
                await anyio.sleep(0.1)
            assert "Traceback" not in stderr.read_text(), stderr.read_text()


async def test_a_sender_killed_while_its_worker_writes_to_it_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first sender says it is ready and then reads nothing, so that the worker's
    # writes fill its socket and block; killed then, the worker's write fails.
    marker = tmp_path / "started-once"
    stalls_first = (
        f"import os, pathlib, pickle, socket, struct, sys, time\n"
        f"p = pathlib.Path({str(marker)!r})\n"
        "if not p.exists():\n"
        "    p.touch(); s = socket.socket(fileno=int(sys.argv[1])); r = pickle.dumps('ready')\n"
        "    s.sendall(struct.pack('>I', len(r)) + r); time.sleep(60); os._exit(1)\n"
    ) + remote._ENTRY
    monkeypatch.setattr(remote, "_ENTRY", stalls_first)
    outcomes: dict[int, SendResult | None] = {}
    settings = remote.SenderSettings(
        concurrency=4, cap=4, grace=1.0, allow_private=True, client_limit=4
    )
    lanes = remote.RemoteLanes(settings, lambda key, outcome: outcomes.update({key: outcome}))

    def request(key: int, url: str, body: bytes) -> Request:
        return Request(key, f"dlv_{key}", "reg_1", url, {}, body, 5.0, time.time() + 30)

    async with LoopbackReceiver() as receiver, anyio.create_task_group() as group:
        await group.start(lanes.run)
        stalled = lanes.pid
        assert stalled is not None
        lanes.put([request(key, receiver.url, b"x" * 100_000) for key in range(40)])
        await anyio.sleep(0.3)  # the worker's end is now blocked writing
        os.kill(stalled, signal.SIGKILL)
        await eventually(lambda: len(outcomes) == 40, timeout=10)
        assert set(outcomes.values()) == {None}  # given back unsent, redone after the lease
        await eventually(lambda: lanes.pid not in (None, stalled), timeout=10)
        lanes.put([request(99, receiver.url, b"{}")])
        await eventually(lambda: 99 in outcomes, timeout=10)
        answered = outcomes[99]
        assert answered is not None and answered.status == 200
        lanes.close()


@pytest.mark.parametrize("anyio_backend", [("asyncio", {"use_uvloop": True})], ids=["uvloop"])
async def test_a_stall_of_the_workers_own_loop_does_not_count_as_a_hung_sender(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(remote, "_HUNG_AFTER", 1.0)
    settings = remote.SenderSettings(
        concurrency=4, cap=4, grace=1.0, allow_private=True, client_limit=4
    )
    lanes = remote.RemoteLanes(settings, lambda key, outcome: None)
    async with anyio.create_task_group() as group:
        await group.start(lanes.run)
        sender = lanes.pid
        time.sleep(1.5)  # noqa: ASYNC251 - the point: this whole event loop stops
        await anyio.sleep(1.2)
        assert lanes.pid == sender, "a live sender was taken for a hung one"
        lanes.close()


@pytest.mark.parametrize("backend", ["reqwest", "aiohttp"])
async def test_a_sender_process_sends_with_the_configured_backend(
    tmp_path: Path, master_key: str, backend: str
) -> None:
    """pyreqwest's native library is loaded in the sender process exactly when it is the
    backend (aiohttp is imported by every process: it is the fallback)."""
    if backend == "reqwest":
        pytest.importorskip("pyreqwest", reason="the native client's extra is not installed")
    async with (
        LoopbackReceiver() as receiver,
        HookRuntime(
            f"sqlite:///{tmp_path / 'hooks.db'}",
            master_key=master_key,
            allow_private_targets=True,
            sender_process=True,
            http_client=backend,
        ) as runtime,
    ):
        await runtime.registrations.create(org="acme", topics=["punch.create"], url=receiver.url)
        await runtime.emit("punch.create", {"punch": {"id": 1}}, org="acme")
        await eventually(lambda: receiver.received, timeout=30)
        (pid,) = [w.sender_pid for w in runtime.workers]
        mapped = await anyio.Path(f"/proc/{pid}/maps").read_text()
    assert ("pyreqwest" in mapped) is (backend == "reqwest")
