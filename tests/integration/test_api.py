"""The API app in-process, and a real `hookruntime serve` subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from hookruntime import HookRuntime
from hookruntime.api import create_app

pytestmark = pytest.mark.anyio


async def client_for(runtime: HookRuntime) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(runtime, manage_lifecycle=False))
    return httpx.AsyncClient(transport=transport, base_url="http://hookruntime.test")


async def test_healthz_answers_ok(runtime: HookRuntime) -> None:
    async with await client_for(runtime) as client:
        response = await client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


async def test_topics_need_a_valid_key(runtime: HookRuntime) -> None:
    key = await runtime.keys.create(org="acme", scopes=["webhooks:manage"])
    async with await client_for(runtime) as client:
        missing = await client.get("/v1/topics")
        wrong = await client.get("/v1/topics", headers={"Authorization": "Bearer hrk_nope"})
        ok = await client.get("/v1/topics", headers={"Authorization": f"Bearer {key.key}"})
    for response in (missing, wrong):
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"] == "Bearer"
    names = {t["name"] for t in ok.json()["items"]}
    assert {"user_logged_in", "punch.create", "webhook.disabled"} <= names


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_runs_on_the_sqlite_default(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKRUNTIME_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "hookruntime.cli", "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                assert time.monotonic() < deadline, "serve did not answer within 30 s"
                time.sleep(0.1)
        assert response.json() == {"status": "ok"}
        assert (tmp_path / "hookruntime.db").exists()
    finally:
        process.terminate()
        process.wait(timeout=15)
        if process.stdout:
            process.stdout.close()


async def test_an_unexpected_error_is_a_logged_problem_document_not_plain_text(
    sqlite_runtime: HookRuntime, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    key = await sqlite_runtime.keys.create(org="acme", scopes=["webhooks:manage"])

    def broken() -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(sqlite_runtime.catalog, "values", broken)
    transport = httpx.ASGITransport(
        app=create_app(sqlite_runtime, manage_lifecycle=False), raise_app_exceptions=False
    )
    async with httpx.AsyncClient(transport=transport, base_url="http://hookruntime.test") as client:
        response = await client.get("/v1/topics", headers={"Authorization": f"Bearer {key.key}"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert "a bug" not in response.text  # details go to the log, not to the caller
    assert "unexpected RuntimeError on GET /v1/topics" in caplog.text
