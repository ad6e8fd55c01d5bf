"""SyncHookRuntime.emit(session=...): the rows go through a synchronous host's own
connection (SQLAlchemy Session or Connection, sqlite3, psycopg), the event exists if and
only if the host commits, and the commit starts delivery at once."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from anyio.from_thread import start_blocking_portal
from sqlalchemy import Engine, create_engine, event, func, select
from sqlalchemy.orm import Session

from hookruntime import ConflictError, StoreError, ValidationError
from hookruntime.store.models import DELIVERIES, EVENTS
from hookruntime.sync import SyncHookRuntime
from hookruntime.testing import LoopbackReceiver, Received, Reply

pytestmark = pytest.mark.anyio


@pytest.fixture
def receiver() -> Iterator[LoopbackReceiver]:
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(LoopbackReceiver(lambda _r: Reply(204))) as rx,
    ):
        yield rx


def _engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url)

        # pysqlite's own transaction handling breaks SAVEPOINT; SQLAlchemy's recipe.
        @event.listens_for(engine, "connect")
        def _connect(dbapi: Any, _record: Any) -> None:
            dbapi.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN")

        return engine
    return create_engine(url.replace("postgresql://", "postgresql+psycopg://"))


class Host:
    """One open host transaction of a ``kind``: ``handle`` is what emit is given."""

    def __init__(self, kind: str, url: str) -> None:
        self.kind = kind
        self._engine: Engine | None = None
        self.handle: Any
        if kind in ("session", "connection"):
            self._engine = _engine(url)
            if kind == "session":
                self.handle = Session(self._engine)
            else:
                self.handle = self._engine.connect()
                self.handle.begin()
        elif url.startswith("sqlite"):
            self.handle = sqlite3.connect(url.removeprefix("sqlite:///"))
        else:
            self.handle = psycopg.connect(url)

    def commit(self) -> None:
        self.handle.commit()

    def rollback(self) -> None:
        self.handle.rollback()

    @contextmanager
    def savepoint_rolled_back(self) -> Iterator[None]:
        if self.kind in ("session", "connection"):
            nested = self.handle.begin_nested()
            yield
            nested.rollback()
        else:
            self.handle.execute("SAVEPOINT sp")
            yield
            self.handle.execute("ROLLBACK TO SAVEPOINT sp")
            self.handle.execute("RELEASE SAVEPOINT sp")

    def close(self) -> None:
        self.handle.close()
        if self._engine is not None:
            self._engine.dispose()


@pytest.fixture(params=["session", "connection", "dbapi"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def hooks(
    database_url: str, master_key: str, receiver: LoopbackReceiver
) -> Iterator[SyncHookRuntime]:
    with SyncHookRuntime(database_url, master_key=master_key, allow_private_targets=True) as opened:
        opened.registrations.create(
            org="acme", topics=["profile_updated"], url=receiver.url, profile="standard"
        )
        yield opened


@pytest.fixture
def host(kind: str, database_url: str, hooks: SyncHookRuntime) -> Iterator[Host]:
    opened = Host(kind, database_url)
    yield opened
    opened.close()


def _posts(receiver: LoopbackReceiver) -> list[Received]:
    return [r for r in receiver.received if r.method == "POST"]


def _wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.005)


def _pause(seconds: float) -> None:
    # The tests are async only for the PostgreSQL fixtures; the host they play is sync.
    time.sleep(seconds)


def _rows(database_url: str) -> tuple[int, int]:
    engine = _engine(database_url)
    try:
        with engine.connect() as conn:
            # Only the test's own topic: the runtime emits events of its own (webhook.*).
            events = conn.execute(
                select(func.count()).where(EVENTS.c.topic == "profile_updated")
            ).scalar_one()
            deliveries = conn.execute(
                select(func.count()).where(DELIVERIES.c.topic == "profile_updated")
            ).scalar_one()
    finally:
        engine.dispose()
    return events, deliveries


def _emit(hooks: SyncHookRuntime, host: Host, n: int) -> str:
    return hooks.emit("profile_updated", {"id": f"u{n}"}, org="acme", session=host.handle)


async def test_an_emit_in_the_hosts_transaction_is_delivered_promptly_after_its_commit(
    hooks: SyncHookRuntime, host: Host, receiver: LoopbackReceiver, database_url: str
) -> None:
    # Longer than a poll and a heartbeat, so that only the commit's wake-up explains it.
    _pause(1.2)
    first = _emit(hooks, host, 1)
    [second, third] = hooks.emit_many(
        "profile_updated", [{"id": "u2"}, {"id": "u3"}], org="acme", session=host.handle
    )
    _pause(0.2)
    assert _posts(receiver) == []  # nothing leaves before the commit
    host.commit()
    committed = time.time()
    _wait_for(lambda: len(_posts(receiver)) == 3)
    posts = _posts(receiver)
    assert {p.headers["webhook-id"] for p in posts} == {first, second, third}
    assert max(p.at for p in posts) - committed < 0.5
    assert _rows(database_url) == (3, 3)


async def test_a_rolled_back_host_transaction_leaves_no_event_and_sends_nothing(
    hooks: SyncHookRuntime, host: Host, receiver: LoopbackReceiver, database_url: str
) -> None:
    _emit(hooks, host, 1)
    host.rollback()
    _pause(0.3)
    assert _posts(receiver) == []
    assert _rows(database_url) == (0, 0)


async def test_a_rolled_back_savepoint_drops_only_its_own_events(
    hooks: SyncHookRuntime, host: Host, receiver: LoopbackReceiver, database_url: str
) -> None:
    kept = _emit(hooks, host, 1)
    savepoint: AbstractContextManager[None] = host.savepoint_rolled_back()
    with savepoint:
        _emit(hooks, host, 2)
    also_kept = _emit(hooks, host, 3)
    host.commit()
    _wait_for(lambda: len(_posts(receiver)) == 2)
    _pause(0.2)
    assert {p.headers["webhook-id"] for p in _posts(receiver)} == {kept, also_kept}
    assert _rows(database_url) == (2, 2)


@pytest.mark.parametrize("engine_name", ["sqlite"])
async def test_a_session_of_another_kind_is_refused_and_writes_nothing(
    hooks: SyncHookRuntime, database_url: str, tmp_path: Path
) -> None:
    with pytest.raises(ValidationError, match="session: must be an SQLAlchemy Session"):
        hooks.emit("profile_updated", {"id": "u"}, org="acme", session=object())
    autocommit = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
    with pytest.raises(ValidationError, match="autocommit"):
        hooks.emit("profile_updated", {"id": "u"}, org="acme", session=autocommit)
    autocommit.close()
    other = sqlite3.connect(tmp_path / "other.db")
    with pytest.raises(ValidationError, match="unknown topic"):
        hooks.emit("no_such_topic", {}, org="acme", session=other)
    # A connection to another database fails as our own error, not the driver's.
    with pytest.raises(StoreError, match="no such table"):
        hooks.emit("profile_updated", {"id": "u"}, org="acme", session=other)
    other.close()
    assert _rows(database_url) == (0, 0)


@pytest.mark.parametrize("kind", ["session", "dbapi"])
async def test_thirty_two_threads_emit_each_in_its_own_host_transaction(
    hooks: SyncHookRuntime, kind: str, receiver: LoopbackReceiver, database_url: str
) -> None:
    def request(n: int) -> str:
        host = Host(kind, database_url)
        try:
            event_id = _emit(hooks, host, n)
            if n % 4 == 3:
                host.rollback()
                return ""
            host.commit()
            return event_id
        finally:
            host.close()

    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(request, range(64)))
    committed = {a for a in answers if a}
    assert len(committed) == 48
    _wait_for(lambda: len(_posts(receiver)) == 48, timeout=20)
    _pause(0.2)
    assert {p.headers["webhook-id"] for p in _posts(receiver)} == committed
    assert _rows(database_url) == (48, 48)


def test_wake_is_harmless_on_a_closed_instance(tmp_path: Path, master_key: str) -> None:
    hooks = SyncHookRuntime(f"sqlite:///{tmp_path / 'hooks.db'}", master_key=master_key)
    hooks.wake()
    with hooks:
        hooks.wake()
    hooks.wake()


def _emit_once(hooks: SyncHookRuntime, host: Host, data: dict[str, Any], key: str = "k-1") -> str:
    return hooks.emit("profile_updated", data, org="acme", idempotency_key=key, session=host.handle)


async def test_an_idempotency_key_in_the_hosts_transaction_answers_its_first_event(
    hooks: SyncHookRuntime, host: Host, receiver: LoopbackReceiver, database_url: str
) -> None:
    first = _emit_once(hooks, host, {"id": "u1"})
    assert _emit_once(hooks, host, {"id": "u1"}) == first  # the same request: replayed
    with pytest.raises(ConflictError):
        _emit_once(hooks, host, {"id": "u2"})  # another request under the same key
    host.commit()
    # Replayed after the commit, through the runtime's own transaction too.
    assert hooks.emit("profile_updated", {"id": "u1"}, org="acme", idempotency_key="k-1") == first
    _wait_for(lambda: len(_posts(receiver)) == 1)
    _pause(0.2)
    assert [p.headers["webhook-id"] for p in _posts(receiver)] == [first]
    assert _rows(database_url) == (1, 1)


async def test_a_key_taken_in_a_rolled_back_host_transaction_is_free_again(
    hooks: SyncHookRuntime, host: Host, receiver: LoopbackReceiver, database_url: str
) -> None:
    dropped = _emit_once(hooks, host, {"id": "u1"})
    host.rollback()
    # Another request under the key: no conflict, since the first one was never written.
    kept = _emit_once(hooks, host, {"id": "u2"})
    host.commit()
    assert kept != dropped
    _wait_for(lambda: len(_posts(receiver)) == 1)
    assert [p.headers["webhook-id"] for p in _posts(receiver)] == [kept]
    assert _rows(database_url) == (1, 1)
