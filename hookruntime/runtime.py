"""The :class:`HookRuntime` facade: settings and catalog, the control plane
(registrations, keys, deliveries), the blocking ``call`` and the queued ``emit``; the
parts behind it are built in :mod:`hookruntime.parts`.

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
from types import TracebackType
from typing import Any, Self

from sqlalchemy.ext.asyncio import AsyncSession

from .arguments import check_hook, check_json, check_session, documents, json_data
from .blocking import BreakerPolicy, Breakers, CallResult
from .catalog import Catalog, refuse_runtime_topic
from .config import Settings
from .errors import HookRuntimeError, ValidationError
from .keys import Keys
from .observe import Metrics, Observer
from .observe.tracing import detect as detect_tracing
from .parts import Parts, open_parts
from .plugins import Plugin, build_catalog, discover
from .profiles import PROFILES
from .queue.deliveries import Deliveries
from .queue.idempotency import Published, check_idempotency_key
from .queue.outbox import Outbox
from .queue.worker import Worker
from .registrations import Registrations
from .static import StaticRegistration
from .static import apply as apply_static
from .store.attempts import AttemptLog
from .store.engine import Database

__all__ = ["HookRuntime"]

log = logging.getLogger("hookruntime")


class HookRuntime:
    """Open it with ``async with`` (or :meth:`open`/:meth:`close`); one per process is the
    usual shape, though nothing stops a process from opening several.

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
        self._parts: Parts | None = None
        self.workers: list[Worker] = []
        self._stack: AsyncExitStack | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> HookRuntime:
        """A runtime configured only by ``HOOKRUNTIME_*`` variables."""
        return cls(environ=environ)

    # -- lifecycle ---------------------------------------------------------------

    async def open(self) -> None:
        """Open the store (migrating it unless ``auto_migrate=False``), the HTTP client
        and the background tasks (:mod:`hookruntime.parts`)."""
        if self._stack is not None:
            raise HookRuntimeError("this HookRuntime is already open")
        async with AsyncExitStack() as stack:
            self.observer.tracing = detect_tracing(self._tracer_provider)
            parts = await open_parts(
                stack,
                self.settings,
                self.catalog,
                self.observer,
                self.breakers,
                auto_migrate=self.auto_migrate,
            )
            if self.metrics is not None:
                workers = parts.workers
                self.metrics.bind(
                    parts.database, lambda: [w.in_flight for w in workers], self.breakers.states
                )
                stack.callback(self.metrics.unbind)
            self._parts, self.workers = parts, list(parts.workers)
            self._stack = stack.pop_all()
        if self.auto_migrate and self.static_registration is not None:
            try:
                await apply_static(self.static_registration, parts.registrations)
            except BaseException:
                await self.close()
                raise
        plugins = sorted({t.plugin for t in self.catalog.values()})
        database = parts.database
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
        self._parts = None
        if stack is not None:
            await stack.aclose()
            log.info("hookruntime closed")

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

    def _open(self) -> Parts:
        if self._parts is None:
            raise HookRuntimeError("HookRuntime is not open; use `async with runtime:`")
        return self._parts

    @property
    def database(self) -> Database:
        return self._open().database

    @property
    def is_open(self) -> bool:
        """Whether the runtime is open (between :meth:`open` and :meth:`close`)."""
        return self._parts is not None

    async def ping(self) -> None:
        """One round trip to the store; raises StoreUnavailable when it cannot be reached."""
        await self.database.ping()

    @property
    def keys(self) -> Keys:
        return self._open().keys

    @property
    def registrations(self) -> Registrations:
        return self._open().registrations

    @property
    def attempts(self) -> AttemptLog:
        return self._open().attempts

    @property
    def outbox(self) -> Outbox:
        return self._open().outbox

    @property
    def deliveries(self) -> Deliveries:
        return self._open().deliveries

    # -- hooks -------------------------------------------------------------------

    async def call(
        self, topic: str, data: Any, *, org: str, deadline: float | None = None
    ) -> CallResult:
        """Call every active registration of ``org`` for the blocking ``topic`` at once and
        merge their answers; returns by the deadline (the topic's, or ``deadline`` seconds
        when tighter) whatever the receivers do."""
        check_hook(topic, org, deadline=deadline)
        check_json(data)
        return await self._open().caller.call(topic, data, org=org, deadline=deadline)

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
            caller = self._open().caller
            result = await caller.call(topic, declared.sample, org=org, only=registration_id)
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
        check_idempotency_key(idempotency_key)
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
