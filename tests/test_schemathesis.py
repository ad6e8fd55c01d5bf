"""Schemathesis against a real `hookruntime serve`: every operation of /openapi.json with
generated requests (bounded examples, all checks): no 5xx, nothing contradicting the
schema. The server runs without workers, so nothing it accepts is sent anywhere."""

from __future__ import annotations

import atexit
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve() -> Iterator[tuple[str, str]]:
    folder = Path(tempfile.mkdtemp())
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKRUNTIME_")}
    env |= {
        "HOOKRUNTIME_DATABASE_URL": f"sqlite:///{folder / 'api.db'}",
        "HOOKRUNTIME_WORKERS": "0",
    }
    cli = [sys.executable, "-m", "hookruntime.cli"]
    subprocess.run([*cli, "migrate"], env=env, capture_output=True, check=True)
    created = subprocess.run(
        [
            sys.executable,
            "-m",
            "hookruntime.cli",
            "keys",
            "create",
            "--org",
            "acme",
            "--scope",
            "webhooks:manage",
            "--scope",
            "events:emit",
            "--scope",
            "hooks:call",
            "--scope",
            "deliveries:read",
            "--json",
        ],
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


SERVER = _serve()
BASE, KEY = next(SERVER)
atexit.register(lambda: next(SERVER, None))  # also when the module is collected but not run
schema = schemathesis.openapi.from_url(f"{BASE}/openapi.json")


@schema.auth()
class Bearer:
    def get(self, case: schemathesis.Case, context: object) -> str:
        return KEY

    def set(self, case: schemathesis.Case, data: str, context: object) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case: schemathesis.Case) -> None:
    case.call_and_validate()


def teardown_module() -> None:
    next(SERVER, None)
