"""PostgreSQL server CPU per delivered event: ``python -m hookruntime.bench.pgcpu``.

Emits events on a scratch database with no worker running, then drains them with one
worker (in this process) to a loopback receiver. Adds up the CPU (utime + stime from
``/proc/<pid>/stat``) of every server process attached to that database, each phase
apart: its connections' backends and any autovacuum worker cleaning up after the run.
Other people's sessions on the same server are not counted, so the figure holds on a
shared machine; the rates do not. The server must be local (its ``/proc`` readable).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import anyio
import asyncpg

from .. import eventloop
from ..runtime import HookRuntime
from ..store.crypto import generate_master_key
from ..store.engine import async_url, asyncpg_dsn
from .queued import TOPIC, _drop_postgres, _item, _scratch_postgres
from .stats import ReceiverProcess

__all__ = ["run"]

_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # gone meanwhile
        return None
    fields = stat.rsplit(")", 1)[1].split()
    # After the command: state is field 3 of stat(5), utime 14 and stime 15.
    return (int(fields[11]) + int(fields[12])) / _TICK


async def _watch(server_url: str, name: str, seen: dict[int, float], stop: anyio.Event) -> None:
    """Keep, per server process attached to ``name``, the largest CPU total read: a
    process that exits keeps what it had at the last look (every 0.2 s)."""
    conn = await asyncpg.connect(asyncpg_dsn(async_url(server_url)[0], "postgres"))
    try:
        while not stop.is_set():
            rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", name)
            for row in rows:
                cpu = _cpu_seconds(row["pid"])
                if cpu is not None:
                    seen[row["pid"]] = max(cpu, seen.get(row["pid"], 0.0))
            with anyio.move_on_after(0.2):
                await stop.wait()
    finally:
        await conn.close()


def _spent(seen: dict[int, float], before: dict[int, float]) -> float:
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in seen.items())


async def _phases(database_url: str, url: str, n: int, seen: dict[int, float]) -> dict[str, Any]:
    """Emit ``n`` events with no worker running, then drain them with one worker: the
    server's CPU of each phase apart (the watcher's reading at each boundary)."""
    key = generate_master_key()
    options: dict[str, Any] = {"master_key": key, "allow_private_targets": True}
    async with HookRuntime(database_url, workers=0, **options) as runtime:
        await runtime.registrations.create(
            org="bench", topics=[TOPIC], url=url, secret="bench-secret-123456"
        )
        await anyio.sleep(0.5)
        start = dict(seen)
        started = time.perf_counter()
        for first in range(0, n, 1000):
            await runtime.emit_many(
                TOPIC, [_item(i) for i in range(first, min(n, first + 1000))], org="bench"
            )
        emit_seconds = time.perf_counter() - started
        await anyio.sleep(0.5)
        emitted = dict(seen)
    async with HookRuntime(database_url, workers=1, sender_process=False, **options) as runtime:
        started = time.perf_counter()
        while sum(worker.delivered for worker in runtime.workers) < n:
            await anyio.sleep(0.01)
        seconds = time.perf_counter() - started
        await anyio.sleep(0.5)
        delivered = dict(seen)
    return {
        "n": n,
        "emit_per_second": round(n / emit_seconds, 1),
        "deliver_per_second": round(n / seconds, 1),
        "server_cpu_us_per_emit": round(_spent(emitted, start) / n * 1e6, 1),
        "server_cpu_us_per_delivery": round(_spent(delivered, emitted) / n * 1e6, 1),
        "server_cpu_us_per_event": round(_spent(delivered, start) / n * 1e6, 1),
    }


async def _one(server_url: str, url: str, n: int) -> dict[str, Any]:
    scratch, name = await _scratch_postgres(server_url)
    seen: dict[int, float] = {}
    stop = anyio.Event()
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(_watch, server_url, name, seen, stop)
            result = await _phases(scratch, url, n, seen)
            stop.set()
    finally:
        await _drop_postgres(server_url, name)
    return result


async def _measure(server_url: str, n: int, repeats: int) -> dict[str, Any]:
    with ReceiverProcess() as receiver:
        url = receiver.url("hook")
        runs = [await _one(server_url, url, n) for _ in range(repeats)]
    return {"load_average": os.getloadavg(), "at": time.time(), "runs": runs}


def run(server_url: str, n: int = 20_000, repeats: int = 1) -> dict[str, Any]:
    return eventloop.run(_measure, server_url, n, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    print(json.dumps(run(args.postgres_url, args.n, args.repeats)))


if __name__ == "__main__":
    main()
