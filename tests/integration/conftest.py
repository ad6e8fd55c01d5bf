"""Fixtures: a real SQLite file and a real PostgreSQL database per test, and an open runtime."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import Table, func, select

from hookruntime import HookRuntime
from hookruntime.store import Database, migrate
from hookruntime.store.crypto import generate_master_key

PG_HOST = os.environ.get("HOOKRUNTIME_TEST_PG_HOST", "127.0.0.1")
PG_ADMIN = f"postgresql://postgres@{PG_HOST}:5432/postgres"


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _pg_url(name: str) -> str:
    return f"postgresql://postgres@{PG_HOST}:5432/{name}"


@pytest.fixture(scope="session")
async def pg_template() -> AsyncIterator[str]:
    """A migrated PostgreSQL database that each test copies (CREATE DATABASE … TEMPLATE)."""
    name = f"hookruntime_tmpl_{uuid.uuid4().hex[:10]}"
    await _admin(f'CREATE DATABASE "{name}"')
    database = Database(_pg_url(name))
    await migrate(database)
    await database.dispose()
    yield name
    await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def pg_url(pg_template: str) -> AsyncIterator[str]:
    name = f"hookruntime_test_{uuid.uuid4().hex[:10]}"
    await _admin(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    yield _pg_url(name)
    await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def empty_pg_url() -> AsyncIterator[str]:
    """A PostgreSQL database with no schema at all."""
    name = f"hookruntime_empty_{uuid.uuid4().hex[:10]}"
    await _admin(f'CREATE DATABASE "{name}"')
    yield _pg_url(name)
    await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def engine_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(engine_name: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if engine_name == "sqlite":
        return f"sqlite:///{tmp_path / 'hooks.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def master_key() -> str:
    return generate_master_key()


@pytest.fixture
async def runtime(database_url: str, master_key: str) -> AsyncIterator[HookRuntime]:
    async with HookRuntime(database_url, workers=0, master_key=master_key) as opened:
        yield opened


@pytest.fixture
async def sqlite_runtime(tmp_path: Path, master_key: str) -> AsyncIterator[HookRuntime]:
    """A runtime on a SQLite file, for tests whose subject is not the database."""
    url = f"sqlite:///{tmp_path / 'hooks.db'}"
    async with HookRuntime(
        url, workers=0, master_key=master_key, allow_private_targets=True
    ) as opened:
        yield opened


@pytest.fixture
def open_runtime(
    database_url: str, master_key: str
) -> Callable[..., AbstractAsyncContextManager[HookRuntime]]:
    """Opens runtimes on one database: ``open_runtime(workers=1, lease="2")`` sets
    ``HOOKRUNTIME_LEASE=2``, so a test can reopen the database it left behind."""

    @asynccontextmanager
    async def make(workers: int = 1, **env: str) -> AsyncIterator[HookRuntime]:
        environ = {f"HOOKRUNTIME_{k.upper()}": v for k, v in env.items()}
        async with HookRuntime(
            database_url,
            workers=workers,
            master_key=master_key,
            allow_private_targets=True,
            environ=environ,
        ) as runtime:
            yield runtime

    return make


async def _count(runtime: HookRuntime, table: Table, **where: Any) -> int:
    query = select(func.count()).select_from(table)
    for name, value in where.items():
        query = query.where(table.c[name] == value)
    async with runtime.database.engine.connect() as conn:
        return int((await conn.execute(query)).scalar_one())


@pytest.fixture
def count() -> Callable[..., Any]:
    """``await count(runtime, DELIVERIES, status="dead")``: the rows of a table that match."""
    return _count
