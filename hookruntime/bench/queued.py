"""``hookruntime bench queued``: deliveries per second end to end, beside the raw ceiling of
each HTTP client, in one run, against a loopback receiver in its own process.

(a) the ceiling: each HTTP client backend posting the same signed bodies, 64 at a time,
no database; (b) emit -> delivered and recorded on SQLite, by a worker with a sender
process, by the embedded default (one process, the configured client) and by one process
on aiohttp; (c) the same on PostgreSQL; (d) enqueue -> first attempt latency with idle
workers; (e) peak RSS of a worker process (with its sender process) draining a large
backlog (``--backlog``); (f) (b) with Prometheus metrics off and on, alternated, and the
ratio; (g) the Celery baseline (``celery_baseline``); (h) 1, 2 and 3 worker processes on
one PostgreSQL backlog (``scaleout``); and the ratios the layouts are judged by
(``verdict``). (c) and (h) run only with a PostgreSQL URL, (e) and (f) only where a
sender process can run. ``quick`` runs every part with 300 events.
"""

from __future__ import annotations

import os
import resource
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
from . import celery_baseline, clients, scaleout
from .backlog import backlog_rss
from .report import render
from .stats import ReceiverProcess, summary

__all__ = ["render", "run"]

TOPIC = "punch.create"
CONCURRENCY = 64


def _item(index: int) -> dict[str, Any]:
    return {"punch": {"id": index, "punch_type": "IN", "person": {"id": 1, "first_name": "R"}}}


async def _raw(url: str, n: int, backend: str) -> float:
    from ..profiles import PROFILES, Message

    profile = PROFILES["servicehook"]
    client = clients.client(backend)
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
    database_url: str,
    url: str,
    n: int,
    sender: bool,
    metrics: bool = True,
    http_client: str | None = None,
) -> dict[str, Any]:
    async with HookRuntime(
        database_url,
        workers=1,
        sender_process=sender,
        http_client=http_client,
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
        backend = runtime.settings.http_client
    return {
        "n": n,
        "sender_process": sender,
        "http_client": backend,
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


async def _measure(n: int, database_url: str | None, backlog: int, quick: bool) -> dict[str, Any]:
    # The embedded default is one process with the configured backend (auto: pyreqwest
    # where installed); the service's default sends with it from a sender process; one
    # process on aiohttp is the baseline layout.
    backend = Settings.from_env().http_client
    results: dict[str, Any] = {"http_client": backend, "quick": quick}
    try:
        with_sender = Settings.from_env(sender_process=True).sender_process
    except ConfigurationError:
        with_sender = False
    layouts: list[tuple[bool, str, str | None]] = [(False, "_one_process", None)]
    if with_sender:
        layouts.insert(0, (True, "", None))
    if backend != "aiohttp":
        layouts.append((False, "_aiohttp", "aiohttp"))
    with ReceiverProcess() as receiver, tempfile.TemporaryDirectory() as folder:
        url = receiver.url("hook")
        ceilings = {}
        for each in clients.measured_backends():
            await _raw(url, min(n, 2000), each)  # warm up both processes: the warm ceiling
            ceilings[each] = round(await _raw(url, n, each), 1)
        raw = ceilings.get(backend) or await _raw(url, n, backend)
        results["a_raw_per_second"] = round(raw, 1)
        results["a_raw_by_backend"] = ceilings
        results["ratios"] = {}
        for sender, suffix, http_client in layouts:
            sqlite = await _end_to_end(
                f"sqlite:///{Path(folder) / f'e2e{suffix}.db'}", url, n, sender, True, http_client
            )
            results[f"b_sqlite{suffix}"] = sqlite
            if not http_client:
                results["ratios"][f"b{suffix}_over_a"] = round(sqlite["per_second"] / raw, 3)
            if database_url:
                scratch, name = await _scratch_postgres(database_url)
                try:
                    postgres = await _end_to_end(scratch, url, n, sender, True, http_client)
                finally:
                    await _drop_postgres(database_url, name)
                results[f"c_postgresql{suffix}"] = postgres
                if not http_client:
                    results["ratios"][f"c{suffix}_over_a"] = round(postgres["per_second"] / raw, 3)
        results["d_idle_latency"] = await _latency(Path(folder), 20 if quick else 200)
        if with_sender:
            results["f_metrics"] = await _metrics_cost(Path(folder), url, n)
        if backlog and with_sender:
            results["e_worker_backlog"] = await backlog_rss(Path(folder), url, backlog, 20)
        base = url.rsplit("/", 1)[0]
        results["g_celery"] = await anyio.to_thread.run_sync(celery_baseline.run, base, n)
        if database_url:

            async def scratch_database() -> tuple[str, str]:
                return await _scratch_postgres(database_url)

            async def drop_database(name: str) -> None:
                await _drop_postgres(database_url, name)

            results["h_scaleout"] = await scaleout.run_async(
                scratch_database, drop_database, url, n
            )
    results["verdict"] = _verdict(results)
    results["load_average"] = [round(x, 2) for x in os.getloadavg()]
    results["bench_process_peak_rss_mb"] = round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
    )
    return results


def _verdict(results: dict[str, Any]) -> dict[str, Any]:
    """The ratios the issue asks for, each from this one run."""
    layouts = {
        key: value
        for key, value in results.items()
        if key.startswith(("b_", "c_")) and isinstance(value, dict)
    }
    default = results["b_sqlite_one_process"]
    ceiling = results["a_raw_by_backend"].get(default["http_client"], results["a_raw_per_second"])
    best_key = max(layouts, key=lambda key: layouts[key]["per_second"])
    best = layouts[best_key]["per_second"]
    verdict: dict[str, Any] = {
        "default_over_own_ceiling": round(default["per_second"] / ceiling, 3),
        "best": best_key,
        "best_per_second": best,
    }
    aiohttp = "b_sqlite_aiohttp" if "b_sqlite_aiohttp" in layouts else "b_sqlite_one_process"
    verdict["best_over_one_process_aiohttp"] = round(best / layouts[aiohttp]["per_second"], 3)
    if results.get("g_celery"):
        celery = results["g_celery"]["best"]["per_second"]
        verdict["best_over_celery"] = round(best / celery, 2)
    return verdict


def run(
    n: int = 20_000, database_url: str | None = None, backlog: int = 0, quick: bool = False
) -> dict[str, Any]:
    return eventloop.run(_measure, 300 if quick else n, database_url, backlog, quick)
