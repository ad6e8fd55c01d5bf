"""The parts an open :class:`~hookruntime.runtime.HookRuntime` is made of, built in
dependency order by :func:`open_parts`: each is given, when built, everything it uses,
and none is handed another's method afterwards.

::

    database ─┬─ attempts ───────────────┐
              ├─ registrations ─ directory ─┬─ caller (blocking path)
              ├─ keys                       │
              ├─ deliveries                 │
              └─ intakes ─┬─ outbox         │
                          └─ workers ───────┘  (queued path)

Everything opened is closed by the exit stack it is given, in reverse order: the
workers stop first (in-flight sends get their grace), then the attempt log writes what
it holds, then the HTTP client and the database close.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import anyio
from anyio.abc import TaskGroup, TaskStatus

from .blocking import BlockingCaller, Breakers
from .catalog import Catalog
from .config import Settings
from .errors import ConfigurationError
from .http import HttpClient, client_class
from .keys import Keys
from .observe import Observer
from .queue.deliveries import Deliveries
from .queue.intake import Intake
from .queue.outbox import Outbox
from .queue.records import DisablePolicy
from .queue.wake import Wakeup
from .queue.worker import Worker, WorkerSettings
from .registrations import Registrations
from .store.attempts import AttemptLog
from .store.crypto import SecretBox, generate_master_key, load_key_file
from .store.engine import Database
from .store.migrate import migrate
from .targets import Directory

__all__ = ["Parts", "open_parts"]

log = logging.getLogger("hookruntime")

#: How often delivered events past their retention are pruned.
PRUNE_EVERY = 300.0


@dataclass(frozen=True)
class Parts:
    database: Database
    attempts: AttemptLog
    registrations: Registrations
    keys: Keys
    caller: BlockingCaller
    deliveries: Deliveries
    outbox: Outbox
    workers: Sequence[Worker]


async def open_parts(
    stack: AsyncExitStack,
    settings: Settings,
    catalog: Catalog,
    observer: Observer,
    breakers: Breakers,
    *,
    auto_migrate: bool,
) -> Parts:
    """Build and start every part; ``stack`` closes them."""
    database = Database(settings.database_url)
    stack.push_async_callback(database.dispose)
    box = SecretBox(_master_key(settings, database))
    if auto_migrate:
        await migrate(database)
    client = await _open_client(stack, settings)
    tasks = await stack.enter_async_context(anyio.create_task_group())
    attempts = AttemptLog(database)
    tasks.start_soon(attempts.run)
    # Unwound after the workers' stop (pushed below) and before the task group ends:
    # the log's writer still runs then, to write what it holds.
    stack.push_async_callback(_drain, attempts)
    wakeup = Wakeup()
    registrations = Registrations(
        database, catalog, box, allow_private=settings.allow_private_targets, wakeup=wakeup
    )
    keys = Keys(database, catalog)
    directory = Directory(database, registrations)
    caller = BlockingCaller(catalog, directory, client, attempts, breakers, observer=observer)
    deliveries = Deliveries(database, wakeup)
    worker_settings = _worker_settings(settings, observer)
    intakes = [Intake(wakeup, worker_settings) for _ in range(settings.workers)]
    # The first worker takes the deliveries this process emits straight from the
    # outbox, through its intake; the others, and other processes, claim them.
    outbox = Outbox(database, catalog, wakeup, intakes[0] if intakes else None)
    workers = [
        Worker(database, directory, client, wakeup, worker_settings, intake) for intake in intakes
    ]
    if workers:
        await _start_workers(stack, tasks, workers, deliveries, settings.retention)
    return Parts(database, attempts, registrations, keys, caller, deliveries, outbox, workers)


def _master_key(settings: Settings, database: Database) -> str:
    if settings.master_key:
        return settings.master_key
    if database.memory:
        return generate_master_key()
    path = database.path
    if path is None:
        raise ConfigurationError(
            "HOOKRUNTIME_MASTER_KEY is required on PostgreSQL: it encrypts signing "
            "secrets at rest (make one with `hookruntime master-key`)"
        )
    return load_key_file(Path(f"{path}.key"))


async def _open_client(stack: AsyncExitStack, settings: Settings) -> HttpClient:
    client = client_class(settings.http_client)(
        limit=max(settings.concurrency * 4, 256), allow_private=settings.allow_private_targets
    )
    await client.open()
    stack.push_async_callback(client.aclose)
    return client


def _worker_settings(settings: Settings, observer: Observer) -> WorkerSettings:
    return WorkerSettings(
        concurrency=settings.concurrency,
        registration_concurrency=min(settings.registration_concurrency, settings.concurrency),
        lease=settings.lease,
        sender_process=settings.sender_process,
        http_client=settings.http_client,
        observer=observer,
        health=DisablePolicy(settings.disable_after_failures, settings.disable_after),
    )


async def _start_workers(
    stack: AsyncExitStack,
    tasks: TaskGroup,
    workers: Sequence[Worker],
    deliveries: Deliveries,
    retention: float,
) -> None:
    finished = []
    for worker in workers:
        done = anyio.Event()
        finished.append(done)
        await tasks.start(_until_done, worker, done)
    pruning = anyio.CancelScope()
    tasks.start_soon(_prune, deliveries, retention, pruning)

    async def stop() -> None:
        for worker in workers:
            worker.stop()
        with anyio.CancelScope(shield=True):
            for done in finished:
                await done.wait()
        # Only the pruning: the attempt log's writer still has rows to write (it
        # stops once drained), and cancelled it would leave them, and close, waiting.
        pruning.cancel()

    stack.push_async_callback(stop)


async def _until_done(
    worker: Worker, done: anyio.Event, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
) -> None:
    try:
        await worker.run(task_status=task_status)
    finally:
        done.set()


async def _prune(deliveries: Deliveries, retention: float, scope: anyio.CancelScope) -> None:
    with scope:
        while True:
            await anyio.sleep(PRUNE_EVERY)
            try:
                pruned = await deliveries.prune(older_than=retention)
                if pruned:
                    log.info("pruned %d delivered events", pruned)
            except Exception:
                log.exception("pruning failed; will try again")


async def _drain(attempts: AttemptLog) -> None:
    with anyio.CancelScope(shield=True), anyio.move_on_after(10):
        await attempts.close()
        await attempts.flush()
