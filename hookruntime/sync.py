"""The runtime for synchronous hosts (Django, Flask, scripts): :class:`SyncHookRuntime`.

::

    with SyncHookRuntime("sqlite:///hooks.db") as hooks:
        result = hooks.call("user_logged_in", claims, org="acme", deadline=1.5)
        hooks.emit("profile_updated", profile, org="acme", key=profile["id"])
        hooks.registrations.list(org="acme")

One :class:`~hookruntime.HookRuntime` runs on an event loop in a thread of its own; every
method hands its work to that loop and waits for the answer, so any number of request
threads may use one instance at once. Its delivery workers keep running on that thread
between calls, as they would in an async host.

``emit(..., session=conn)`` writes the event in the host's own transaction instead,
in the calling thread, through the host's connection: an SQLAlchemy ``Session`` or
``Connection``, or a ``sqlite3`` or ``psycopg`` connection (Django's
``connection.connection``). The event exists if and only if the host commits, and
the commit wakes the workers: through the session's or connection's commit event, a
``NOTIFY`` on PostgreSQL, and on SQLite the workers' watch of the file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack, suppress
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

from anyio.from_thread import BlockingPortal, start_blocking_portal
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from .arguments import check_hook, documents, json_data
from .blocking import CallResult
from .errors import HookRuntimeError
from .eventloop import backend_options
from .keys import Keys
from .queue.deliveries import Deliveries
from .queue.handoff import CommitHandOff, wake_on_commit
from .queue.idempotency import check_idempotency_key
from .queue.writers import writer_for
from .registrations import Registrations
from .runtime import HookRuntime
from .store.failures import store_errors

__all__ = ["SyncHookRuntime"]

T = TypeVar("T")


class SyncPart(Generic[T]):
    """A part of the control plane (``keys``, ``registrations``, ``deliveries``) whose
    coroutine methods are called from any thread and waited for; same names, same
    arguments, same answers and errors as on :class:`~hookruntime.HookRuntime`."""

    def __init__(self, portal: BlockingPortal, part: T) -> None:
        self._portal = portal
        self._part = part

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._part, name)
        if not callable(attribute):
            return attribute
        portal = self._portal

        def blocking(*args: Any, **kwargs: Any) -> Any:
            return portal.call(lambda: attribute(*args, **kwargs))

        blocking.__name__ = name
        blocking.__doc__ = attribute.__doc__
        return blocking


class SyncHookRuntime:
    """:class:`~hookruntime.HookRuntime`'s methods, synchronous and thread-safe.

    Takes the same arguments as ``HookRuntime`` (or ``runtime=`` an unopened one). Open it
    with ``with`` (or :meth:`open`/:meth:`close`); closing finishes in-flight deliveries
    as ``HookRuntime.close`` does, then stops the loop's thread.
    """

    def __init__(self, *args: Any, runtime: HookRuntime | None = None, **kwargs: Any) -> None:
        if runtime is not None and (args or kwargs):
            raise HookRuntimeError("pass either runtime= or HookRuntime's arguments, not both")
        self.runtime = runtime if runtime is not None else HookRuntime(*args, **kwargs)
        self._stack: ExitStack | None = None
        self._portal: BlockingPortal | None = None
        self._handoff = CommitHandOff(lambda _direct: self.wake())
        # One object, so that a connection gets one listener however many emits it runs.
        self._on_connection_commit: Callable[[Connection], None] = lambda _conn: self.wake()

    # -- lifecycle ---------------------------------------------------------------

    def open(self) -> None:
        if self._stack is not None:
            raise HookRuntimeError("this SyncHookRuntime is already open")
        with ExitStack() as stack:
            portal = stack.enter_context(
                start_blocking_portal("asyncio", backend_options=backend_options())
            )
            stack.enter_context(portal.wrap_async_context_manager(self.runtime))
            self._portal = portal
            self._stack = stack.pop_all()

    def close(self) -> None:
        stack, self._stack = self._stack, None
        self._portal = None
        if stack is not None:
            stack.close()

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _run(self, func: Callable[[], Any]) -> Any:
        if self._portal is None:
            raise HookRuntimeError("SyncHookRuntime is not open; use `with runtime:`")
        return self._portal.call(func)

    # -- hooks -------------------------------------------------------------------

    def call(self, topic: str, data: Any, *, org: str, deadline: float | None = None) -> CallResult:
        """As :meth:`HookRuntime.call`: returns by the deadline with the merged answer."""
        result: CallResult = self._run(
            lambda: self.runtime.call(topic, data, org=org, deadline=deadline)
        )
        return result

    def emit(
        self,
        topic: str,
        data: Any,
        *,
        org: str,
        key: str | None = None,
        idempotency_key: str | None = None,
        session: Any = None,
    ) -> str:
        """As :meth:`HookRuntime.emit`: in a transaction of the runtime's own, or in
        ``session``'s (see the module's doc for the kinds taken)."""
        if session is not None:
            check_hook(topic, org, key=key)
            if idempotency_key is not None:
                return self._once_through(session, topic, data, org, key, idempotency_key)
            return self._through(session, topic, [data], org, [key])[0]
        event_id: str = self._run(
            lambda: self.runtime.emit(
                topic, data, org=org, key=key, idempotency_key=idempotency_key
            )
        )
        return event_id

    def emit_many(
        self,
        topic: str,
        items: Iterable[Any],
        *,
        org: str,
        keys: Sequence[str | None] | None = None,
        session: Any = None,
    ) -> list[str]:
        """As :meth:`HookRuntime.emit_many`: many events of one topic in one transaction."""
        if session is not None:
            check_hook(topic, org)
            return self._through(session, topic, documents(items, keys), org, keys)
        listed = list(items)
        ids: list[str] = self._run(
            lambda: self.runtime.emit_many(topic, listed, org=org, keys=keys)
        )
        return ids

    def wake(self) -> None:
        """Wake this instance's idle workers now, e.g. from Django's
        ``transaction.on_commit`` after an emit through the host's connection; safe
        from any thread, and a no-op once closed."""
        portal = self._portal
        if portal is None:
            return
        outbox = self.runtime.outbox

        async def wake() -> None:
            outbox.wake()

        with suppress(RuntimeError):  # closed meanwhile: no worker left to wake
            portal.start_task_soon(wake)

    def _through(
        self,
        session: Any,
        topic: str,
        events: list[Any],
        org: str,
        keys: Sequence[str | None] | None,
    ) -> list[str]:
        """Write in the calling thread, through the host's connection, so that the rows
        are part of the host's transaction."""
        if self._portal is None:
            raise HookRuntimeError("SyncHookRuntime is not open; use `with runtime:`")
        outbox, database = self.runtime.outbox, self.runtime.database
        # The host's driver fails as our StoreError, as the runtime's own would (e.g. a
        # connection to another database, where the runtime's tables are missing).
        with store_errors(database.url), json_data(events):
            writer = writer_for(session, database.dialect)
            ids, _ = outbox.publish_through(writer, topic, events, org=org, keys=keys)
        self._wake_on_commit(session)
        return ids

    def _wake_on_commit(self, session: Any) -> None:
        if isinstance(session, Session):
            self._handoff.add(session, [])
        elif isinstance(session, Connection):
            wake_on_commit(session, self._on_connection_commit)

    def _once_through(
        self,
        session: Any,
        topic: str,
        data: Any,
        org: str,
        key: str | None,
        idempotency_key: str,
    ) -> str:
        """:meth:`_through` for one event under an idempotency key."""
        if self._portal is None:
            raise HookRuntimeError("SyncHookRuntime is not open; use `with runtime:`")
        check_idempotency_key(idempotency_key)
        outbox, database = self.runtime.outbox, self.runtime.database
        with store_errors(database.url), json_data([data]):
            writer = writer_for(session, database.dialect)
            published = outbox.publish_once_through(
                writer, topic, data, org=org, key=key, idempotency_key=idempotency_key
            )
        if not published.replayed:
            self._wake_on_commit(session)
        return published.ids[0]

    def send_test(
        self, *, org: str, topic: str | None = None, registration_id: str | None = None
    ) -> dict[str, Any]:
        """As :meth:`HookRuntime.send_test`."""
        answer: dict[str, Any] = self._run(
            lambda: self.runtime.send_test(org=org, topic=topic, registration_id=registration_id)
        )
        return answer

    # -- control plane -----------------------------------------------------------

    def _part(self, part: T) -> SyncPart[T]:
        if self._portal is None:
            raise HookRuntimeError("SyncHookRuntime is not open; use `with runtime:`")
        return SyncPart(self._portal, part)

    @property
    def keys(self) -> SyncPart[Keys]:
        return self._part(self.runtime.keys)

    @property
    def registrations(self) -> SyncPart[Registrations]:
        return self._part(self.runtime.registrations)

    @property
    def deliveries(self) -> SyncPart[Deliveries]:
        return self._part(self.runtime.deliveries)
