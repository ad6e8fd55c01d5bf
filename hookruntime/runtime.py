"""The :class:`HookRuntime` facade: settings, catalog, store, control plane.

::

    runtime = HookRuntime.from_env()
    async with runtime:
        key = await runtime.keys.create(org="acme", scopes=["webhooks:manage"])
        reg = await runtime.registrations.create(org="acme", topics=["profile_updated"],
                                                 url="https://crm.example/hooks")
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import anyio
from anyio.abc import TaskGroup, TaskStatus
from sqlalchemy.ext.asyncio import AsyncSession

from .arguments import check_hook, check_json, check_session, documents, json_data
from .blocking import BlockingCaller, BreakerPolicy, Breakers, CallResult
from .catalog import Catalog, refuse_runtime_topic
from .config import Settings
from .errors import ConfigurationError, HookRuntimeError, ValidationError
from .http import HttpClient
from .http.httpx_client import HttpxClient
from .keys import Keys
from .observe import Metrics, Observer
from .observe.tracing import detect as detect_tracing
from .plugins import Plugin, build_catalog, discover
from .profiles import PROFILES
from .queue.deliveries import Deliveries
from .queue.idempotency import Published
from .queue.intake import Intake
from .queue.outbox import MAX_KEY, Outbox
from .queue.records import DisablePolicy
from .queue.wake import Wakeup
from .queue.worker import Worker, WorkerSettings
from .registrations import Registrations
from .static import StaticRegistration
from .static import apply as apply_static
from .store.attempts import AttemptLog
from .store.crypto import SecretBox, generate_master_key, load_key_file
from .store.engine import Database
from .store.migrate import migrate
from .targets import Directory

__all__ = ["HookRuntime"]

log = logging.getLogger("hookruntime")


class HookRuntime:
    """One runtime per process: open it with ``async with`` (or :meth:`open`/:meth:`close`).

    ``settings`` (default: read from the ``HOOKRUNTIME_*`` environment) holds every setting;
    the keyword arguments that are not None win over it. ``plugins`` replaces entry-point
    discovery (tests, embedded hosts); the catalog is built and every plugin validated
    here, so a broken plugin fails at construction with its name.
    """

    def __init__(
        self,
        database_url: str | None = None,
        *,
        settings: Settings | None = None,
        workers: int | None = None,
        master_key: str | None = None,
        allow_private_targets: bool | None = None,
        concurrency: int | None = None,
        sender_process: bool | None = None,
        lease: float | None = None,
        metrics: bool | None = None,
        http_client: str | None = None,
        plugins: Sequence[Plugin] | None = None,
        auto_migrate: bool = True,
        breaker: BreakerPolicy | None = None,
        tracer_provider: Any = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        overrides: dict[str, Any] = dict(
            database_url=database_url,
            workers=workers,
            master_key=master_key,
            allow_private_targets=allow_private_targets,
            concurrency=concurrency,
            sender_process=sender_process,
            lease=lease,
            metrics=metrics,
            http_client=http_client,
        )
        given = {k: v for k, v in overrides.items() if v is not None}
        # Checked once, with the arguments in: "auto" settings (the HTTP client) are
        # resolved against the final values, not the environment's alone.
        if settings is None:
            self.settings = Settings.from_env(environ, **given)
        else:
            self.settings = replace(settings, **given).checked()
        #: The runtime's Prometheus metrics (None with ``metrics=False``).
        self.metrics = Metrics() if self.settings.metrics else None
        self.observer = Observer(self.metrics)
        # OpenTelemetry's, when given; else the global one, if set when the runtime opens.
        self._tracer_provider = tracer_provider
        self.catalog: Catalog = build_catalog(discover() if plugins is None else plugins, PROFILES)
        # Seed 002's WEBHOOK_* settings: read now, so that a bad one fails at construction.
        self.static_registration = StaticRegistration.from_env(self.catalog, environ)
        self.auto_migrate = auto_migrate
        self.breakers = Breakers(breaker)
        self._database: Database | None = None
        self._keys: Keys | None = None
        self._registrations: Registrations | None = None
        self._caller: BlockingCaller | None = None
        self._attempts: AttemptLog | None = None
        self._outbox: Outbox | None = None
        self._deliveries: Deliveries | None = None
        self.workers: list[Worker] = []
        self._stack: AsyncExitStack | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> HookRuntime:
        """A runtime configured only by ``HOOKRUNTIME_*`` variables."""
        return cls(environ=environ)

    # -- lifecycle ---------------------------------------------------------------

    async def open(self) -> None:
        """Open the store (migrating it unless ``auto_migrate=False``), the HTTP client
        and the background tasks."""
        if self._stack is not None:
            raise HookRuntimeError("this HookRuntime is already open")
        async with AsyncExitStack() as stack:
            # The parts in dependency order: each is given, when built, all it uses.
            self.observer.tracing = detect_tracing(self._tracer_provider)
            database = Database(self.settings.database_url)
            stack.push_async_callback(database.dispose)
            box = SecretBox(self._master_key(database))
            if self.auto_migrate:
                await migrate(database)
            client = await self._open_client(stack)
            tasks = await stack.enter_async_context(anyio.create_task_group())
            attempts = AttemptLog(database)
            tasks.start_soon(attempts.run)
            wakeup = Wakeup()
            registrations = Registrations(
                database,
                self.catalog,
                box,
                allow_private=self.settings.allow_private_targets,
                wakeup=wakeup,
            )
            keys = Keys(database, self.catalog)
            directory = Directory(database, registrations)
            caller = BlockingCaller(
                self.catalog, directory, client, attempts, self.breakers, observer=self.observer
            )
            deliveries = Deliveries(database, wakeup)
            worker_settings = self._worker_settings()
            intakes = [Intake(wakeup, worker_settings) for _ in range(self.settings.workers)]
            # The first worker takes the deliveries this process emits straight from the
            # outbox, through its intake; the others, and other processes, claim them.
            outbox = Outbox(database, self.catalog, wakeup, intakes[0] if intakes else None)
            workers = [
                Worker(database, directory, client, wakeup, worker_settings, intake)
                for intake in intakes
            ]
            self._database, self._attempts, self._keys = database, attempts, keys
            self._registrations, self._caller = registrations, caller
            self._deliveries, self._outbox, self.workers = deliveries, outbox, workers
            await self._start_workers(stack, tasks)
            # After the workers' stop, which cancels the task group: unwound first, so the
            # log's writer still runs to write what it holds.
            stack.push_async_callback(self._drain, attempts)
            if self.metrics is not None:
                self.metrics.bind(
                    database, lambda: [w.in_flight for w in self.workers], self.breakers.states
                )
                stack.callback(self.metrics.unbind)

            self._stack = stack.pop_all()
        if self.auto_migrate and self.static_registration is not None:
            try:
                await apply_static(self.static_registration, registrations)
            except BaseException:
                await self.close()
                raise
        plugins = sorted({t.plugin for t in self.catalog.values()})
        log.info(
            "hookruntime open on %s: %d workers, %d topics from %s",
            database.dialect,
            len(self.workers),
            len(self.catalog),
            ", ".join(plugins),
            extra={
                "database": database.url.render_as_string(hide_password=True),
                "workers": len(self.workers),
                "topics": len(self.catalog),
                "plugins": plugins,
                "metrics": self.metrics is not None,
            },
        )

    async def close(self) -> None:
        stack, self._stack = self._stack, None
        self._database = self._keys = self._registrations = None
        self._caller = self._attempts = None
        self._outbox = self._deliveries = None
        if stack is not None:
            await stack.aclose()
            log.info("hookruntime closed")

    async def _open_client(self, stack: AsyncExitStack) -> HttpClient:
        backend = _client_backend(self.settings.http_client)
        client = backend(
            limit=max(self.settings.concurrency * 4, 256),
            allow_private=self.settings.allow_private_targets,
        )
        await client.open()
        stack.push_async_callback(client.aclose)
        return client

    def _worker_settings(self) -> WorkerSettings:
        settings = self.settings
        return WorkerSettings(
            concurrency=settings.concurrency,
            registration_concurrency=min(settings.registration_concurrency, settings.concurrency),
            lease=settings.lease,
            sender_process=settings.sender_process,
            observer=self.observer,
            health=DisablePolicy(settings.disable_after_failures, settings.disable_after),
        )

    async def _start_workers(self, stack: AsyncExitStack, tasks: TaskGroup) -> None:
        if not self.workers:
            return
        finished = []
        for worker in self.workers:
            done = anyio.Event()
            finished.append(done)
            await tasks.start(_until_done, worker, done)
        retention = anyio.CancelScope()
        tasks.start_soon(self._retention_loop, retention)

        async def stop() -> None:
            for worker in self.workers:
                worker.stop()
            with anyio.CancelScope(shield=True):
                for done in finished:
                    await done.wait()
            # Only the pruning: the attempt log's writer still has rows to write (it
            # stops once drained), and cancelled it would leave them, and close, waiting.
            retention.cancel()

        stack.push_async_callback(stop)

    async def _retention_loop(self, scope: anyio.CancelScope) -> None:
        with scope:
            while True:
                await anyio.sleep(300)
                try:
                    pruned = await self.deliveries.prune(older_than=self.settings.retention)
                    if pruned:
                        log.info("pruned %d delivered events", pruned)
                except Exception:
                    log.exception("pruning failed; will try again")

    @staticmethod
    async def _drain(attempts: AttemptLog) -> None:
        with anyio.CancelScope(shield=True), anyio.move_on_after(10):
            await attempts.close()
            await attempts.flush()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- parts -------------------------------------------------------------------

    @property
    def database(self) -> Database:
        if self._database is None:
            raise HookRuntimeError("HookRuntime is not open; use `async with runtime:`")
        return self._database

    @property
    def is_open(self) -> bool:
        """Whether the runtime is open (between :meth:`open` and :meth:`close`)."""
        return self._database is not None

    async def ping(self) -> None:
        """One round trip to the store; raises StoreUnavailable when it cannot be reached."""
        await self.database.ping()

    @property
    def keys(self) -> Keys:
        self.database  # noqa: B018 - raises the clear "not open" error
        assert self._keys is not None
        return self._keys

    @property
    def registrations(self) -> Registrations:
        self.database  # noqa: B018
        assert self._registrations is not None
        return self._registrations

    @property
    def attempts(self) -> AttemptLog:
        self.database  # noqa: B018
        assert self._attempts is not None
        return self._attempts

    # -- hooks -------------------------------------------------------------------

    async def call(
        self, topic: str, data: Any, *, org: str, deadline: float | None = None
    ) -> CallResult:
        """Call every active registration of ``org`` for the blocking ``topic`` at once and
        merge their answers; returns by the deadline (the topic's, or ``deadline`` seconds
        when tighter) whatever the receivers do."""
        check_hook(topic, org, deadline=deadline)
        check_json(data)
        self.database  # noqa: B018
        assert self._caller is not None
        return await self._caller.call(topic, data, org=org, deadline=deadline)

    async def send_test(
        self, *, org: str, topic: str | None = None, registration_id: str | None = None
    ) -> dict[str, Any]:
        """Send ``topic``'s sample payload to every registration of ``org`` for it, or to
        one registration (``topic`` then defaults to its first). Queued topics become an
        event (``{"id", "deliveries"}``); blocking ones a call (``{"result": …}``)."""
        check_hook(topic, org, registration_id=registration_id, optional_topic=True)
        if registration_id is not None:
            registration = await self.registrations.get(registration_id, org=org)
            topic = topic or registration.topics[0]
            if topic not in registration.topics:
                raise ValidationError.single(
                    "topic", f"registration {registration_id!r} does not subscribe to {topic!r}"
                )
        if topic is None:
            raise ValidationError.single("topic", "name the topic to test")
        declared = self.catalog.get_topic(topic)
        if declared.blocking:
            assert self._caller is not None
            result = await self._caller.call(topic, declared.sample, org=org, only=registration_id)
            return {"topic": topic, "result": result.to_dict()}
        ids, count = await self.outbox.publish(
            topic, [declared.sample], org=org, only=registration_id
        )
        return {"topic": topic, "id": ids[0], "deliveries": count}

    async def publish(
        self,
        topic: str,
        items: Iterable[Any],
        *,
        org: str,
        keys: Sequence[str | None] | None = None,
        idempotency_key: str | None = None,
        session: AsyncSession | None = None,
    ) -> Published:
        """Write events of the queued ``topic`` to the outbox in one transaction (in
        ``session``'s when given) and say what was written: :class:`Published`
        ``(ids, deliveries, replayed)``. :meth:`emit` and :meth:`emit_many` are this,
        answering the ids only; a front end that reports more (the HTTP API answers the
        delivery count, and whether a request was a replay) calls this instead of
        reaching into the outbox.

        ``idempotency_key`` (one event only: the key names that event) makes a retry
        safe: the same key with the same request (topic, data, key) answers the first
        event again, ``replayed`` and with nothing written, however many twins run at
        once; the same key with another request raises :class:`ConflictError`. Keys are
        per org, and free again when the transaction that took one rolls back."""
        check_hook(topic, org)
        check_session(session)
        refuse_runtime_topic(topic)
        events = documents(items, keys)
        if idempotency_key is None:
            with json_data(events):
                ids, count = await self.outbox.publish(
                    topic, events, org=org, keys=keys, session=session
                )
            return Published(ids, count)
        if not isinstance(idempotency_key, str) or not 0 < len(idempotency_key) <= MAX_KEY:
            raise ValidationError.single(
                "idempotency_key", f"must be a string of 1 to {MAX_KEY} characters"
            )
        if len(events) != 1:
            raise ValidationError.single(
                "idempotency_key", "names one event: publish exactly one item with it"
            )
        if keys is not None and len(keys) != 1:
            raise ValidationError.single("keys", "give one key (or None) per event")
        key = None if keys is None else keys[0]
        with json_data(events):
            return await self.outbox.publish_once(
                topic, events[0], org=org, key=key, idempotency_key=idempotency_key,
                session=session,
            )  # fmt: skip

    async def emit(
        self,
        topic: str,
        data: Any,
        *,
        org: str,
        key: str | None = None,
        idempotency_key: str | None = None,
        session: AsyncSession | None = None,
    ) -> str:
        """Write one event of the queued ``topic`` to the outbox (in ``session``'s
        transaction when given) and return its id; workers deliver it. With
        ``idempotency_key``, a repeat of the same request returns the first event's id
        (see :meth:`publish`)."""
        check_hook(topic, org, key=key)
        published = await self.publish(
            topic, [data], org=org, keys=[key], idempotency_key=idempotency_key, session=session
        )
        return published.ids[0]

    async def emit_many(
        self,
        topic: str,
        items: Iterable[Any],
        *,
        org: str,
        keys: Sequence[str | None] | None = None,
        session: AsyncSession | None = None,
    ) -> list[str]:
        """Write many events of one topic in one transaction; their ids, in order.
        (An idempotency key names one event: :meth:`emit` takes one.)"""
        published = await self.publish(topic, items, org=org, keys=keys, session=session)
        return published.ids

    @property
    def outbox(self) -> Outbox:
        self.database  # noqa: B018
        assert self._outbox is not None
        return self._outbox

    @property
    def deliveries(self) -> Deliveries:
        self.database  # noqa: B018
        assert self._deliveries is not None
        return self._deliveries

    def _master_key(self, database: Database) -> str:
        if self.settings.master_key:
            return self.settings.master_key
        if database.memory:
            return generate_master_key()
        path = database.path
        if path is None:
            raise ConfigurationError(
                "HOOKRUNTIME_MASTER_KEY is required on PostgreSQL: it encrypts signing "
                "secrets at rest (make one with `hookruntime master-key`)"
            )
        return load_key_file(Path(f"{path}.key"))


async def _until_done(
    worker: Worker, done: anyio.Event, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
) -> None:
    try:
        await worker.run(task_status=task_status)
    finally:
        done.set()


def _client_backend(name: str) -> type[HttpClient]:
    if name == "httpx":
        return HttpxClient
    if name == "reqwest":  # an optional extra: imported only when chosen
        from .http.reqwest_client import ReqwestClient

        return ReqwestClient
    return HttpClient
