"""Only HookRuntimeError leaves the Python API: a database that is down, unknown or locked
is a StoreError subclass, and arguments of the wrong type are a ValidationError."""

from __future__ import annotations

import math
import os
import sqlite3
import stat
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import pytest
from conftest import PG_ADMIN, PG_HOST
from sqlalchemy import text

from hookruntime import (
    ConfigurationError,
    HookRuntime,
    StoreLocked,
    StoreUnavailable,
    ValidationError,
)
from hookruntime.store import Database, engine

pytestmark = pytest.mark.anyio


async def test_a_postgresql_with_nothing_listening_is_store_unavailable_without_password(
    master_key: str, refused_port: int
) -> None:
    url = f"postgresql://postgres:hunter2@127.0.0.1:{refused_port}/hooks"
    with pytest.raises(StoreUnavailable) as caught:
        async with HookRuntime(url, workers=0, master_key=master_key):
            pass
    assert "127.0.0.1" in str(caught.value) and "hunter2" not in str(caught.value)
    assert isinstance(caught.value.__cause__, OSError)


async def test_an_unknown_postgresql_database_is_store_unavailable(master_key: str) -> None:
    name = f"hookruntime_missing_{uuid.uuid4().hex[:8]}"
    url = f"postgresql://postgres@{PG_HOST}:5432/{name}"
    with pytest.raises(StoreUnavailable, match=name):
        async with HookRuntime(url, workers=0, master_key=master_key):
            pass


async def test_a_connection_the_server_ends_mid_query_is_store_unavailable(pg_url: str) -> None:
    async def end(pid: int) -> None:
        await anyio.sleep(0.3)
        admin = await asyncpg.connect(PG_ADMIN)
        try:
            await admin.execute("SELECT pg_terminate_backend($1)", pid)
        finally:
            await admin.close()

    database = Database(pg_url)
    try:
        async with anyio.create_task_group() as group:
            with pytest.raises(StoreUnavailable):
                async with database.connect() as conn:
                    pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
                    group.start_soon(end, pid)
                    await conn.execute(text("SELECT pg_sleep(10)"))
    finally:
        await database.dispose()


@pytest.fixture
def short_busy_wait(monkeypatch: pytest.MonkeyPatch) -> float:
    monkeypatch.setattr(engine, "BUSY_TIMEOUT", 0.2)
    return 0.2


async def test_writes_under_a_sqlite_lock_held_past_the_busy_wait_are_store_locked(
    tmp_path: Path, master_key: str, short_busy_wait: float
) -> None:
    path = tmp_path / "locked.db"
    async with HookRuntime(f"sqlite:///{path}", workers=0, master_key=master_key) as runtime:
        await runtime.registrations.create(
            org="acme", topics=["punch.create"], url="https://example.com/hook"
        )
        other = sqlite3.connect(path, isolation_level=None)  # as another process would
        other.execute("BEGIN EXCLUSIVE")
        try:
            with pytest.raises(StoreLocked, match="locked"):
                await runtime.emit("punch.create", {"punch": {"id": 1}}, org="acme")
            with pytest.raises(StoreLocked, match="locked"):
                await runtime.keys.create(org="acme", scopes=["events:emit"])
        finally:
            other.execute("ROLLBACK")
            other.close()
        await runtime.emit("punch.create", {"punch": {"id": 1}}, org="acme")  # free again


async def test_a_sqlite_path_in_a_missing_folder_is_a_configuration_error(
    tmp_path: Path, master_key: str
) -> None:
    url = f"sqlite:///{tmp_path / 'nowhere' / 'hooks.db'}"
    with pytest.raises(ConfigurationError, match="nowhere"):
        async with HookRuntime(url, workers=0, master_key=master_key):
            pass
    assert not (tmp_path / "nowhere").exists()


@pytest.fixture
def umask_022() -> Iterator[None]:
    before = os.umask(0o022)  # the usual default, under which files come out 0644
    yield
    os.umask(before)


async def test_the_sqlite_file_and_its_wal_are_readable_by_their_owner_only(
    tmp_path: Path, umask_022: None
) -> None:
    path = tmp_path / "private.db"
    async with HookRuntime(f"sqlite:///{path}", workers=0) as runtime:
        await runtime.registrations.create(
            org="acme", topics=["punch.create"], url="https://example.com/hook"
        )
        await runtime.emit("punch.create", {"punch": {"id": 1}}, org="acme")
        files = [path, path.with_name("private.db-wal"), path.with_name("private.db-shm")]
        modes = {f.name: stat.S_IMODE(f.stat().st_mode) for f in files}
    assert modes == {f.name: 0o600 for f in files}


Call = Callable[[HookRuntime], Any]

WRONG_ARGUMENTS: dict[str, tuple[Call, str]] = {
    "emit topic not a string": (lambda r: r.emit(123, {}, org="acme"), "topic"),
    "emit org not a string": (lambda r: r.emit("punch.create", {}, org=5), "org"),
    "emit key not a string": (
        lambda r: r.emit("punch.create", {"punch": {"id": 1}}, org="acme", key=5),
        "key",
    ),
    "emit data a set": (lambda r: r.emit("punch.create", {"punch": {1, 2}}, org="acme"), "data"),
    "emit session not a session": (
        lambda r: r.emit("punch.create", {"punch": {"id": 1}}, org="acme", session="s"),
        "session",
    ),
    "emit_many items not iterable": (lambda r: r.emit_many("punch.create", 5, org="acme"), "items"),
    "emit_many topic a list": (lambda r: r.emit_many(["punch.create"], [], org="acme"), "topic"),
    "emit_many keys a string": (
        lambda r: r.emit_many("punch.create", [{"punch": {"id": 1}}], org="acme", keys="k"),
        "keys",
    ),
    "emit_many one item not JSON": (
        lambda r: r.emit_many(
            "punch.create", [{"punch": {"id": 1}}, {"punch": {"id": object()}}], org="acme"
        ),
        "data.1",
    ),
    "call topic not a string": (lambda r: r.call(1, {}, org="acme"), "topic"),
    "call deadline a string": (
        lambda r: r.call("user_logged_in", {"id": "x"}, org="acme", deadline="1"),
        "deadline",
    ),
    "call deadline NaN": (
        lambda r: r.call("user_logged_in", {"id": "x"}, org="acme", deadline=math.nan),
        "deadline",
    ),
    "call deadline too large for a float": (
        lambda r: r.call("user_logged_in", {"id": "x"}, org="acme", deadline=10**400),
        "deadline",
    ),
    "emit org with a trailing newline": (
        lambda r: r.emit("profile_updated", {"id": "x"}, org="acme\n"),
        "org",
    ),
    "call deadline zero": (
        lambda r: r.call("user_logged_in", {"id": "x"}, org="acme", deadline=0),
        "deadline",
    ),
    "call data not JSON": (
        lambda r: r.call("user_logged_in", {"id": object()}, org="acme"),
        "data",
    ),
    "call data NaN": (lambda r: r.call("user_logged_in", {"id": math.nan}, org="acme"), "data"),
    "send_test topic not a string": (lambda r: r.send_test(org="acme", topic=1), "topic"),
    "send_test registration not a string": (
        lambda r: r.send_test(org="acme", registration_id=1),
        "registration_id",
    ),
}


@pytest.mark.parametrize(("call", "field"), WRONG_ARGUMENTS.values(), ids=list(WRONG_ARGUMENTS))
async def test_arguments_of_the_wrong_type_are_validation_errors_naming_them(
    sqlite_runtime: HookRuntime, call: Call, field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        await call(sqlite_runtime)
    assert field in [e.field for e in caught.value.errors]


CONTROL_PLANE: dict[str, tuple[Call, str]] = {
    "keys.create scopes None": (lambda r: r.keys.create(org="acme", scopes=None), "scopes"),
    "keys.create scopes one string": (
        lambda r: r.keys.create(org="acme", scopes="events:emit"),
        "scopes",
    ),
    "keys.create name not a string": (
        lambda r: r.keys.create(org="acme", scopes=["events:emit"], name=5),
        "name",
    ),
    "keys.list org not a string": (lambda r: r.keys.list(org=5), "org"),
    "keys.revoke id not a string": (lambda r: r.keys.revoke(5, org="acme"), "key_id"),
    "deliveries.list limit a string": (lambda r: r.deliveries.list(org="acme", limit="5"), "limit"),
    "deliveries.list after not a string": (
        lambda r: r.deliveries.list(org="acme", after=5),
        "after",
    ),
    "deliveries.list org not a string": (lambda r: r.deliveries.list(org=5), "org"),
    "deliveries.list event_id not a string": (
        lambda r: r.deliveries.list(org="acme", event_id=5),
        "event_id",
    ),
    "deliveries.get id not a string": (lambda r: r.deliveries.get(5, org="acme"), "delivery_id"),
    "deliveries.retry id not a string": (
        lambda r: r.deliveries.retry(5, org="acme"),
        "delivery_id",
    ),
    "deliveries.retry_many org not a string": (lambda r: r.deliveries.retry_many(org=5), "org"),
    "deliveries.event id not a string": (lambda r: r.deliveries.event(5, org="acme"), "event_id"),
}


@pytest.mark.parametrize(("call", "field"), CONTROL_PLANE.values(), ids=list(CONTROL_PLANE))
async def test_control_plane_arguments_of_the_wrong_type_are_validation_errors_on_both_engines(
    runtime: HookRuntime, call: Call, field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        await call(runtime)
    assert field in [e.field for e in caught.value.errors]


async def test_authenticating_a_key_that_is_not_a_string_finds_none(
    sqlite_runtime: HookRuntime,
) -> None:
    assert await sqlite_runtime.keys.authenticate(5) is None  # type: ignore[arg-type]


async def test_a_master_key_file_that_cannot_be_read_is_a_configuration_error(
    tmp_path: Path,
) -> None:
    (tmp_path / "hooks.db.key").mkdir()  # in the way of the key file
    with pytest.raises(ConfigurationError, match="HOOKRUNTIME_MASTER_KEY"):
        async with HookRuntime(f"sqlite:///{tmp_path / 'hooks.db'}", workers=0, environ={}):
            pass


async def test_the_api_answers_503_with_retry_after_when_the_database_is_gone(
    pg_url: str, master_key: str
) -> None:
    import httpx

    from hookruntime.api import create_app

    async with HookRuntime(pg_url, workers=0, master_key=master_key) as runtime:
        key = await runtime.keys.create(org="acme", scopes=["webhooks:manage"])
        admin = await asyncpg.connect(PG_ADMIN)
        try:
            await admin.execute(f'DROP DATABASE "{pg_url.rsplit("/", 1)[1]}" WITH (FORCE)')
        finally:
            await admin.close()
        transport = httpx.ASGITransport(app=create_app(runtime, manage_lifecycle=False))
        async with httpx.AsyncClient(transport=transport, base_url="http://hooks.test") as client:
            response = await client.get(
                "/v1/registrations", headers={"Authorization": f"Bearer {key.key}"}
            )
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "1"
