"""``hookruntime bench queued``: deliveries per second end to end, beside the raw ceiling of
the same HTTP client, in one run, against a loopback receiver in its own process.

(a) the ceiling: the HTTP client posting the same signed bodies, 64 at a time, no
database; (b) emit -> delivered and recorded on SQLite, by a worker with a sender process
and by one sending from its own process; (c) the same on PostgreSQL; (d) enqueue -> first
attempt latency with idle workers; (e) peak RSS of a worker process (with its sender
process) draining a large backlog (``--backlog``); (f) (b) with Prometheus metrics off
and on, alternated, and the ratio.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import anyio
import asyncpg
from sqlalchemy import func, select

from .. import eventloop
from ..config import Settings
from ..errors import ConfigurationError
from ..runtime import HookRuntime
from ..store.crypto import generate_master_key
from ..store.engine import async_url, asyncpg_dsn
from ..store.models import DELIVERIES
from ..testing import LoopbackReceiver
from . import clients
from .stats import ReceiverProcess, summary

__all__ = ["render", "run"]

TOPIC = "punch.create"
CONCURRENCY = 64


def _item(index: int) -> dict[str, Any]:
    return {"punch": {"id": index, "punch_type": "IN", "person": {"id": 1, "first_name": "R"}}}


async def _raw(url: str, n: int) -> float:
    from ..profiles import PROFILES, Message

    profile = PROFILES["servicehook"]
    client = clients.client(Settings.from_env().http_client)
    await client.open()
    bodies = [
        profile.render(Message(TOPIC, f"evt_{i}", _item(i), ["bench-secret-123456"]))
        for i in range(n)
    ]
    started = time.perf_counter()
    queue = iter(bodies)

    async def lane() -> None:
        for request in queue:
            await client.post(url, request.headers, request.body, timeout=30)

    async with anyio.create_task_group() as group:
        for _ in range(CONCURRENCY):
            group.start_soon(lane)
    elapsed = time.perf_counter() - started
    await client.aclose()
    return n / elapsed


async def _delivered(runtime: HookRuntime) -> int:
    query = select(func.count()).select_from(DELIVERIES).where(DELIVERIES.c.status == "delivered")
    async with runtime.database.engine.connect() as conn:
        return int((await conn.execute(query)).scalar_one())


async def _end_to_end(
    database_url: str, url: str, n: int, sender: bool, metrics: bool = True
) -> dict[str, Any]:
    async with HookRuntime(
        database_url,
        workers=1,
        sender_process=sender,
        master_key=generate_master_key(),
        allow_private_targets=True,
        metrics=metrics,
    ) as runtime:
        await runtime.registrations.create(
            org="bench", topics=[TOPIC], url=url, secret="bench-secret-123456"
        )
        started, cpu = time.perf_counter(), time.process_time()
        for start in range(0, n, 1000):
            await runtime.emit_many(
                TOPIC, [_item(i) for i in range(start, min(n, start + 1000))], org="bench"
            )
        emitted = time.perf_counter() - started
        # The workers' own count of results written, not a query: counting rows every
        # 50 ms would take CPU from the run it measures.
        while sum(worker.delivered for worker in runtime.workers) < n:
            await anyio.sleep(0.01)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        recorded = await _delivered(runtime)
        if recorded != n:
            raise RuntimeError(f"{recorded} deliveries recorded as delivered, not {n}")
    return {
        "n": n,
        "sender_process": sender,
        "metrics": metrics,
        "seconds": round(elapsed, 3),
        "emit_seconds": round(emitted, 3),
        "per_second": round(n / elapsed, 1),
        # This process's CPU (emits included; not the sender process's): unlike the rate,
        # it hardly moves with what else the machine is running.
        "cpu_us_per_delivery": round(cpu / n * 1e6, 1),
    }


async def _latency(folder: Path, samples: int) -> dict[str, Any]:
    async with (
        LoopbackReceiver() as receiver,
        HookRuntime(
            f"sqlite:///{folder / 'latency.db'}",
            workers=1,
            master_key=generate_master_key(),
            allow_private_targets=True,
        ) as runtime,
    ):
        await runtime.registrations.create(
            org="bench", topics=[TOPIC], url=receiver.url, secret="bench-secret-123456"
        )
        delays = []
        for index in range(samples):
            await anyio.sleep(0.02)  # idle
            sent = time.time()
            await runtime.emit(TOPIC, _item(index), org="bench")
            while len(receiver.received) <= index:
                await anyio.sleep(0.0005)
            delays.append(receiver.received[index].at - sent)
    return summary(delays)


async def _on_server(database_url: str, sql: str) -> None:
    """Run ``sql`` on the server of ``database_url``, through its ``postgres`` database."""
    conn = await asyncpg.connect(asyncpg_dsn(async_url(database_url)[0], "postgres"))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _metrics_cost(folder: Path, url: str, n: int) -> dict[str, Any]:
    """(f) SQLite with a sender process, metrics off and on, alternated (off, on, on,
    off, off, on) so that neither gains from going first or last on a machine that
    drifts; the ratio of their mean rates, and of this process's CPU per delivery."""
    runs: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
    for index, metrics in enumerate((False, True, True, False, False, True)):
        database_url = f"sqlite:///{folder / f'metrics{index}.db'}"
        runs[metrics].append(await _end_to_end(database_url, url, n, True, metrics))

    def mean(metrics: bool, key: str) -> float:
        return float(sum(run[key] for run in runs[metrics]) / len(runs[metrics]))

    return {
        "n": n,
        "off_per_second": [run["per_second"] for run in runs[False]],
        "on_per_second": [run["per_second"] for run in runs[True]],
        "on_over_off": round(mean(True, "per_second") / mean(False, "per_second"), 3),
        "cpu_us_per_delivery_off": round(mean(False, "cpu_us_per_delivery"), 1),
        "cpu_us_per_delivery_on": round(mean(True, "cpu_us_per_delivery"), 1),
    }


async def _scratch_postgres(database_url: str) -> tuple[str, str]:
    name = f"hookruntime_bench_{uuid.uuid4().hex[:8]}"
    await _on_server(database_url, f'CREATE DATABASE "{name}"')
    return asyncpg_dsn(async_url(database_url)[0], name), name


async def _drop_postgres(database_url: str, name: str) -> None:
    await _on_server(database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _backlog_rss(folder: Path, url: str, n: int, seconds: float) -> dict[str, Any]:
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


async def _measure(n: int, database_url: str | None, backlog: int) -> dict[str, Any]:
    # (a) and the one-process runs send with the configured backend; the sender process
    # always sends with aiohttp, and is left out when another backend is named outright.
    backend = Settings.from_env().http_client
    results: dict[str, Any] = {"http_client": backend}
    try:
        with_sender = Settings.from_env(sender_process=True).sender_process
    except ConfigurationError:
        with_sender = False
    senders = ((True, ""), (False, "_one_process")) if with_sender else ((False, "_one_process"),)
    with ReceiverProcess() as receiver, tempfile.TemporaryDirectory() as folder:
        url = receiver.url("hook")
        await _raw(url, min(n, 2000))  # warm up both processes: (a) is the warm ceiling
        raw = await _raw(url, n)
        results["a_raw_per_second"] = round(raw, 1)
        results["ratios"] = {}
        for sender, suffix in senders:
            sqlite = await _end_to_end(
                f"sqlite:///{Path(folder) / f'e2e{suffix}.db'}", url, n, sender
            )
            results[f"b_sqlite{suffix}"] = sqlite
            results["ratios"][f"b{suffix}_over_a"] = round(sqlite["per_second"] / raw, 3)
            if database_url:
                scratch, name = await _scratch_postgres(database_url)
                try:
                    postgres = await _end_to_end(scratch, url, n, sender)
                finally:
                    await _drop_postgres(database_url, name)
                results[f"c_postgresql{suffix}"] = postgres
                results["ratios"][f"c{suffix}_over_a"] = round(postgres["per_second"] / raw, 3)
        results["d_idle_latency"] = await _latency(Path(folder), 200)
        if with_sender:
            results["f_metrics"] = await _metrics_cost(Path(folder), url, n)
        if backlog and with_sender:
            results["e_worker_backlog"] = await _backlog_rss(Path(folder), url, backlog, 20)
    results["bench_process_peak_rss_mb"] = round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
    )
    return results


def run(n: int = 20_000, database_url: str | None = None, backlog: int = 0) -> dict[str, Any]:
    return eventloop.run(_measure, n, database_url, backlog)


def render(results: dict[str, Any]) -> str:
    lines = [
        f"queued deliveries against a loopback receiver (own process), {results['http_client']}"
        " client (a sender process sends with aiohttp):",
        f"  (a) raw client ceiling       {results['a_raw_per_second']:>9.1f} req/s",
    ]
    for key, label in (
        ("b_sqlite", "(b) SQLite, sender process"),
        ("b_sqlite_one_process", "    SQLite, one process"),
        ("c_postgresql", "(c) PostgreSQL, sender proc."),
        ("c_postgresql_one_process", "    PostgreSQL, one process"),
    ):
        if key in results:
            r = results[key]
            lines.append(
                f"  {label:<28} {r['per_second']:>9.1f} deliveries/s  "
                f"({r['n']} in {r['seconds']} s; emitting took {r['emit_seconds']} s)"
            )
    ratios = results["ratios"]
    shown = []
    for suffix, label in (("", "ratios:"), ("_one_process", "one process:")):
        pairs = [
            f"({x})/(a) {ratios[f'{x}{suffix}_over_a']:.2f}"
            for x in ("b", "c")
            if f"{x}{suffix}_over_a" in ratios
        ]
        shown.append(f"{label} {'  '.join(pairs)}")
    lines.append(f"  {'   '.join(shown)}")
    d = results["d_idle_latency"]
    lines.append(
        f"  (d) idle enqueue->attempt    p50 {d['p50_ms']:.1f} ms  p99 {d['p99_ms']:.1f} ms"
    )
    if "f_metrics" in results:
        f = results["f_metrics"]
        lines.append(
            f"  (f) metrics on / off         {f['on_over_off']:.3f}  (SQLite, sender process; "
            f"off {f['off_per_second']}, on {f['on_per_second']} deliveries/s)"
        )
        lines.append(
            f"      CPU per delivery         off {f['cpu_us_per_delivery_off']} us, "
            f"on {f['cpu_us_per_delivery_on']} us (the worker's process)"
        )
    if "e_worker_backlog" in results:
        e = results["e_worker_backlog"]
        lines.append(
            f"  (e) worker peak RSS          {e['peak_rss_mb']} MB with a {e['backlog']}"
            f"-event backlog ({e['delivered_meanwhile']} delivered in {e['seconds']} s)"
        )
    lines.append(f"  bench process peak RSS       {results['bench_process_peak_rss_mb']} MB")
    return "\n".join(lines)
