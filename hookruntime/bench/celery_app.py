"""The Celery baseline's app and task: what a user would write instead of hookruntime.

The task signs one delivery with hookruntime's own profile signer (so the work per
delivery is the same as ours) and POSTs it with a ``requests`` Session kept per worker
process (connection reuse, the fastest sync client here). Its broker and queue come from
the environment, set by ``celery_baseline`` for each run; results are off, acks early.
"""

from __future__ import annotations

import os
from typing import Any

import requests
from celery import Celery

from ..profiles import PROFILES, Message

BROKER = os.environ.get("HOOKRUNTIME_BENCH_BROKER", "redis://127.0.0.1:6379/15")
QUEUE = os.environ.get("HOOKRUNTIME_BENCH_QUEUE", "hookruntime-bench")
SECRET = "bench-secret-123456"

app = Celery("hookruntime_bench", broker=BROKER)
app.conf.update(
    task_default_queue=QUEUE,
    task_ignore_result=True,
    result_backend=None,
    task_acks_late=False,
    worker_prefetch_multiplier=64,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)
_session: requests.Session | None = None


@app.task(name="hookruntime_bench.deliver")  # type: ignore[untyped-decorator]
def deliver(url: str, topic: str, event_id: str, data: dict[str, Any]) -> int:
    global _session
    if _session is None:
        _session = requests.Session()
    request = PROFILES["servicehook"].render(Message(topic, event_id, data, [SECRET]))
    response = _session.post(url, data=request.body, headers=request.headers, timeout=30)
    return response.status_code
