"""Schemathesis against a real `hookruntime serve`: every operation of /openapi.json with
generated requests (bounded examples, all checks). Positive data: no 5xx, nothing
contradicting the schema. Negative data (wrong types, missing fields, out of range):
a 4xx, never a 5xx. The server runs without workers, so nothing it accepts is sent
anywhere; it starts when the first test runs, not when the module is collected."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import negative_data_rejection
from schemathesis.generation.modes import GenerationMode

from hookruntime import __version__
from hookruntime.api.app import routes
from hookruntime.api.openapi import openapi
from hookruntime.store.crypto import generate_master_key

# Schemathesis' pytest plugin is off by default (pyproject): importing it imports all of
# Schemathesis and Hypothesis, which only this module needs.
pytest_plugins = ["schemathesis.pytest.plugin"]
PG_HOST = os.environ.get("HOOKRUNTIME_TEST_PG_HOST", "127.0.0.1")

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(database_url: str) -> Iterator[tuple[str, str]]:
    """The base URL of a `hookruntime serve` on ``database_url``, and an API key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKRUNTIME_")}
    env |= {
        "HOOKRUNTIME_DATABASE_URL": database_url,
        "HOOKRUNTIME_WORKERS": "0",
        "HOOKRUNTIME_MASTER_KEY": generate_master_key(),
    }
    scopes = ["webhooks:manage", "events:emit", "hooks:call", "deliveries:read"]
    subprocess.run(
        [sys.executable, "-m", "hookruntime.cli", "migrate"],
        env=env,
        capture_output=True,
        check=True,
    )
    created = subprocess.run(
        [sys.executable, "-m", "hookruntime.cli", "keys", "create", "--org", "acme", "--json"]
        + [arg for scope in scopes for arg in ("--scope", scope)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    key = json.loads(created.stdout)["key"]
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "hookruntime.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{base}/healthz", timeout=1)
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.1)
    try:
        yield base, key
    finally:
        process.terminate()
        process.wait(timeout=15)


@pytest.fixture(scope="module")
def on_sqlite() -> Iterator[tuple[str, str]]:
    yield from _serve(f"sqlite:///{Path(tempfile.mkdtemp()) / 'api.db'}")


@pytest.fixture(scope="module")
def on_postgresql() -> Iterator[tuple[str, str]]:
    """On PostgreSQL, which refuses what SQLite stores (NUL characters, huge integers)."""
    name = f"hookruntime_schemathesis_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield from _serve(f"postgresql://postgres@{PG_HOST}:5432/{name}")
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(f"postgresql://postgres@{PG_HOST}:5432/postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _schema(mode: GenerationMode) -> schemathesis.schemas.BaseSchema:
    # The document the server serves, built here from the same routes: loading it needs
    # no server.
    schema = schemathesis.openapi.from_dict(openapi(__version__, routes()))
    schema.config.generation.update(modes=[mode])
    return schema


positive = _schema(GenerationMode.POSITIVE)
negative = _schema(GenerationMode.NEGATIVE)


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@positive.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case: schemathesis.Case, on_sqlite: tuple[str, str]) -> None:
    base, key = on_sqlite
    case.call_and_validate(base_url=base, headers=_auth(key))


@negative.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_refuses_invalid_requests_with_a_4xx(
    case: schemathesis.Case, on_postgresql: tuple[str, str]
) -> None:
    base, key = on_postgresql
    # Every check but "negative data rejected": a mutation that serialisation drops (an
    # empty array for `?status=`, say) leaves a valid request, which that check then calls
    # a failure when it is answered 200. What this pass guards is no 5xx on bad input;
    # tests/integration/test_api_hostile.py asserts the precise 4xx for each kind of bad input.
    case.call_and_validate(
        base_url=base, headers=_auth(key), excluded_checks=[negative_data_rejection]
    )
