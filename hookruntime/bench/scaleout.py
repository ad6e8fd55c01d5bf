"""Scale-out on one PostgreSQL backlog: 1, 2 and 3 ``hookruntime worker`` processes
draining the same prefilled backlog, each count measured on a fresh scratch database.

For each: deliveries per second (from the workers' start until every delivery is recorded
as delivered), and PostgreSQL server CPU per delivery: utime + stime, from /proc, of the
backends serving the scratch database, before and after. The server's shared background
processes (WAL writer, checkpointer) are left out: other people's tests share the server.
On a small machine the workers, the receiver and PostgreSQL compete for the same cores,
so the rate says more about the machine's CPU than about PostgreSQL; CPU per delivery is
the number that carries over to a bigger primary.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import asyncpg

from ..runtime import HookRuntime
from ..store.crypto import generate_master_key
from ..store.models import DELIVERIES

__all__ = ["render", "run_async"]

TOPIC = "punch.create"
TICK = os.sysconf("SC_CLK_TCK")


def _postgres_cpu(database: str) -> dict[int, float]:
    """CPU seconds so far of each backend of ``database``, by pid."""
    found: dict[int, float] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            stat = (proc / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        # "postgres: 15/main: user database host(port) state"
        if not cmdline.startswith("postgres:") or f" {database} " not in cmdline:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        found[int(proc.name)] = (int(fields[11]) + int(fields[12])) / TICK
    return found


async def _prefill(dsn: str, url: str, n: int, key: str) -> None:
    async with HookRuntime(dsn, workers=0, master_key=key, allow_private_targets=True) as runtime:
        await runtime.registrations.create(
            org="bench", topics=[TOPIC], url=url, secret="bench-secret-123456"
        )
        for start in range(0, n, 5000):
            items = [{"punch": {"id": i}} for i in range(start, min(n, start + 5000))]
            await runtime.emit_many(TOPIC, items, org="bench")


async def _delivered(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        query = f"SELECT count(*) FROM {DELIVERIES.name} WHERE status = 'delivered'"
        return int(await conn.fetchval(query))
    finally:
        await conn.close()


async def _once(dsn: str, database: str, url: str, n: int, processes: int) -> dict[str, Any]:
    key = generate_master_key()
    await _prefill(dsn, url, n, key)
    env = {**os.environ, "HOOKRUNTIME_MASTER_KEY": key}
    before = _postgres_cpu(database)
    started = time.perf_counter()
    workers = [
        subprocess.Popen(
            [
                *(sys.executable, "-m", "hookruntime.cli", "worker"),
                *("--database-url", dsn, "--allow-private-targets"),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(processes)
    ]
    try:
        deadline = time.monotonic() + max(120, n / 20)
        # The rate is timed from the first delivery seen, so the workers' start (imports,
        # connecting) is not counted as delivering.
        first: tuple[float, int] | None = None
        while (done := await _delivered(dsn)) < n:
            if time.monotonic() > deadline or any(w.poll() is not None for w in workers):
                raise RuntimeError(f"{processes} worker(s) delivered {done} of {n}")
            if first is None and done:
                first = (time.perf_counter(), done)
            await anyio.sleep(0.1)
        ended = time.perf_counter()
        since, counted = first or (started, 0)
        elapsed = ended - since
        after = _postgres_cpu(database)  # before the workers' backends exit with them
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=60)
    cpu = sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())
    return {
        "processes": processes,
        "n": n,
        # Timed from the first delivery seen: this many, in "seconds".
        "timed": n - counted,
        "seconds": round(elapsed, 3),
        "per_second": round((n - counted) / elapsed, 1),
        "postgres_cpu_us_per_delivery": round(cpu / n * 1e6, 1),
    }


async def run_async(
    scratch: Any, drop: Any, url: str, n: int, counts: tuple[int, ...] = (1, 2, 3)
) -> dict[str, Any]:
    """``scratch()`` makes a scratch database and returns (dsn, name); ``drop(name)``
    drops it."""
    runs = []
    for processes in counts:
        dsn, name = await scratch()
        try:
            runs.append(await _once(dsn, name, url, n, processes))
        finally:
            await drop(name)
    cpu = sum(r["postgres_cpu_us_per_delivery"] for r in runs) / len(runs)
    return {
        "runs": runs,
        "postgres_cpu_us_per_delivery": round(cpu, 1),
        # What one core of PostgreSQL carries at that CPU per delivery.
        "per_postgres_core": round(1e6 / cpu, 0) if cpu else None,
    }


def render(results: dict[str, Any]) -> list[str]:
    lines = []
    for r in results["runs"]:
        lines.append(
            f"  {r['processes']} worker process{'es' if r['processes'] > 1 else '  '}       "
            f"{r['per_second']:>9.1f} deliveries/s  PostgreSQL CPU "
            f"{r['postgres_cpu_us_per_delivery']} us/delivery ({r['timed']} in {r['seconds']} s)"
        )
    lines.append(
        f"  one PostgreSQL core carries ~{results['per_postgres_core']:.0f} deliveries/s "
        f"(at {results['postgres_cpu_us_per_delivery']} us of server CPU each)"
    )
    return lines
