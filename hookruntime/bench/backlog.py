"""(e) of ``hookruntime bench queued``: peak RSS of a ``hookruntime worker`` process and
its sender process together, draining a large backlog on SQLite."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
from sqlalchemy import func, select

from ..runtime import HookRuntime
from ..store.crypto import generate_master_key
from ..store.models import DELIVERIES

__all__ = ["backlog_rss"]

TOPIC = "punch.create"


def _item(index: int) -> dict[str, Any]:
    return {"punch": {"id": index, "punch_type": "IN", "person": {"id": 1, "first_name": "R"}}}


async def _delivered(runtime: HookRuntime) -> int:
    query = select(func.count()).select_from(DELIVERIES).where(DELIVERIES.c.status == "delivered")
    async with runtime.database.engine.connect() as conn:
        return int((await conn.execute(query)).scalar_one())


async def backlog_rss(folder: Path, url: str, n: int, seconds: float) -> dict[str, Any]:
    """Peak RSS of a `hookruntime worker` process and its sender process together,
    draining an ``n``-event backlog."""
    database_url = f"sqlite:///{folder / 'backlog.db'}"
    key = generate_master_key()
    async with HookRuntime(
        database_url, workers=0, master_key=key, allow_private_targets=True
    ) as runtime:
        await runtime.registrations.create(
            org="bench", topics=[TOPIC], url=url, secret="bench-secret-123456"
        )
        for start in range(0, n, 5000):
            await runtime.emit_many(
                TOPIC, [_item(i) for i in range(start, min(n, start + 5000))], org="bench"
            )
    env = {**os.environ, "HOOKRUNTIME_MASTER_KEY": key}
    log = folder / "worker.log"
    peak_kb = 0
    with log.open("w") as stderr:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hookruntime.cli",
                "worker",
                "--database-url",
                database_url,
                "--allow-private-targets",
                "--sender-process",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                await anyio.sleep(0.5)
                if worker.poll() is not None:
                    raise RuntimeError(
                        f"the worker exited ({worker.returncode}) before the measurement "
                        f"ended:\n{log.read_text()[-2000:]}"
                    )
                # The worker and its sender process together.
                peak_kb = max(
                    peak_kb, sum(_peak_rss_kb(pid) for pid in [worker.pid, *_children(worker.pid)])
                )
        finally:
            worker.terminate()
            worker.wait(timeout=60)
    async with HookRuntime(database_url, workers=0, master_key=key) as runtime:
        drained = await _delivered(runtime)
    return {
        "backlog": n,
        "seconds": seconds,
        "delivered_meanwhile": drained,
        "peak_rss_mb": round(peak_kb / 1024, 1),
    }


def _children(pid: int) -> list[int]:
    try:
        listed = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in listed.split()]


def _peak_rss_kb(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:  # gone meanwhile
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0
