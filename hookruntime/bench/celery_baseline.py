"""The baseline users would otherwise pick: the same signed deliveries through a Celery
task (``celery_app``) with a Redis broker, a worker started as a subprocess with its best
settings for this machine, timed from the first enqueue until the receiver has answered
every delivery. Skipped (``None``) where Celery or Redis is missing.

Each pool is measured and the fastest is the baseline: prefork with one process per core,
and a thread pool with many requests in flight. The Redis keys a run created are deleted
at its end; nothing else in the database is touched.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any

__all__ = ["available", "run"]

BROKER = "redis://127.0.0.1:6379/15"
POOLS = (("threads", 32), ("prefork", os.cpu_count() or 2))


def available() -> bool:
    if not all(importlib.util.find_spec(name) for name in ("celery", "redis", "requests")):
        return False
    import redis

    try:
        return bool(redis.Redis.from_url(BROKER, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def _count(base: str) -> int:
    import requests

    return int(requests.get(f"{base}/count", timeout=10).text)


def _once(base: str, n: int, pool: str, concurrency: int, timeout: float) -> dict[str, Any]:
    import redis

    queue = f"hookruntime-bench-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "HOOKRUNTIME_BENCH_BROKER": BROKER}
    broker = redis.Redis.from_url(BROKER)
    existing = set(broker.keys("*"))
    from . import celery_app

    log = tempfile.TemporaryFile()  # noqa: SIM115 -- closed in the finally below
    worker = subprocess.Popen(
        [
            *(sys.executable, "-m", "celery", "-A", "hookruntime.bench.celery_app", "worker"),
            *("-P", pool, "-c", str(concurrency), "-O", "fair", "-l", "warning", "-Q", queue),
            *("--without-gossip", "--without-mingle", "--without-heartbeat"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    url = f"{base}/hook"
    try:
        start = _count(base)
        celery_app.deliver.apply_async(
            (url, "punch.create", "evt_warm", {"punch": {"id": 0}}), queue=queue
        )
        deadline = time.monotonic() + 60
        while _count(base) < start + 1:
            if time.monotonic() > deadline or worker.poll() is not None:
                log.seek(0)
                tail = log.read()[-2000:].decode(errors="replace")
                raise RuntimeError(f"the Celery worker ({pool}) did not start:\n{tail}")
            time.sleep(0.05)
        start += 1
        started = time.perf_counter()
        with celery_app.app.producer_or_acquire() as producer:
            for i in range(n):
                celery_app.deliver.apply_async(
                    (url, "punch.create", f"evt_{i}", {"punch": {"id": i, "punch_type": "IN"}}),
                    producer=producer,
                    queue=queue,
                )
        enqueued = time.perf_counter() - started
        deadline = time.monotonic() + timeout
        while (done := _count(base) - start) < n:
            if time.monotonic() > deadline:
                raise RuntimeError(f"Celery ({pool}) delivered {done} of {n} in {timeout} s")
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        created = set(broker.keys("*")) - existing
        if created:
            broker.delete(*created)
        broker.close()
        log.close()
    return {
        "pool": pool,
        "concurrency": concurrency,
        "n": n,
        "seconds": round(elapsed, 3),
        "enqueue_seconds": round(enqueued, 3),
        "per_second": round(n / elapsed, 1),
    }


def run(base: str, n: int, timeout: float = 600) -> dict[str, Any] | None:
    """``base`` is the receiver's root URL (its ``/count`` tells what it answered)."""
    if not available():
        return None
    runs = [_once(base, n, pool, concurrency, timeout) for pool, concurrency in POOLS]
    best = max(runs, key=lambda r: r["per_second"])
    return {"runs": runs, "best": best}
