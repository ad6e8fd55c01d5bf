"""Logs from real runs: a line per delivery outcome and per blocking call with the ids a
person looks for, secrets and header values never in them, one configured tree (the
CLI's ``--log-level`` and ``--log-format``), and start-up lines that say what runs."""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hookruntime import HookRuntime
from hookruntime.observe import configure_logging
from hookruntime.testing import LoopbackReceiver, Reply, eventually

pytestmark = pytest.mark.anyio
PUNCH = {"punch": {"id": 2, "punch_type": "IN"}}
CLAIMS = {"id": "u1", "email": "u1@example.com"}
SECRET = "whsec_" + "c2VjcmV0LXNpZ25pbmcta2V5LXZhbHVlLTEyMzQ1Ng=="
HEADER_VALUE = "header-token-never-logged-9f8e7d"


@pytest.fixture
def logged() -> Iterator[io.StringIO]:
    """Everything the runtime logs, as configured by the CLI, in JSON lines."""
    root = logging.getLogger()
    saved = root.level, list(root.handlers), logging.getLogger("hookruntime").level
    stream = io.StringIO()
    configure_logging("debug", "json", stream)
    yield stream
    for handler in list(root.handlers):
        if handler not in saved[1]:
            root.removeHandler(handler)
    root.setLevel(saved[0])
    logging.getLogger("hookruntime").setLevel(saved[2])


def lines(stream: io.StringIO, logger: str | None = None) -> list[dict[str, Any]]:
    parsed = [json.loads(line) for line in stream.getvalue().splitlines() if line]
    return [line for line in parsed if logger is None or line["logger"] == logger]


async def test_each_delivery_outcome_is_a_line_with_its_ids_and_never_a_secret(
    tmp_path: Path, master_key: str, logged: io.StringIO
) -> None:
    answers = iter([Reply(status=503), Reply()])
    async with (
        LoopbackReceiver(lambda _r: next(answers)) as receiver,
        HookRuntime(
            f"sqlite:///{tmp_path / 'l.db'}",
            workers=1,
            master_key=master_key,
            allow_private_targets=True,
        ) as runtime,
    ):
        reg = await runtime.registrations.create(
            org="acme",
            topics=["punch.create"],
            url=receiver.url,
            profile="standard",
            secret=SECRET,
            headers={"X-Shared-Token": HEADER_VALUE},
            retry_schedule=[0.05],
        )
        event_id = await runtime.emit("punch.create", PUNCH, org="acme")
        await eventually(lambda: len(lines(logged, "hookruntime.delivery")) == 2)
    assert receiver.received[0].headers["x-shared-token"] == HEADER_VALUE
    failed, delivered = lines(logged, "hookruntime.delivery")
    for line, attempt, status, http in (
        (failed, 1, "failed", 503),
        (delivered, 2, "delivered", 200),
    ):
        assert line["level"] == "info"
        assert line["event"] == event_id
        assert line["delivery"].startswith("dlv_")
        assert line["registration"] == reg.id
        assert (line["org"], line["topic"]) == ("acme", "punch.create")
        assert (line["attempt"], line["status"], line["http_status"]) == (attempt, status, http)
        assert line["latency_ms"] > 0
    assert failed["delivery"] == delivered["delivery"]
    everything = logged.getvalue()
    assert SECRET not in everything and SECRET[6:] not in everything
    assert HEADER_VALUE not in everything


async def test_each_blocking_call_is_a_line_naming_every_receivers_outcome(
    tmp_path: Path, master_key: str, logged: io.StringIO
) -> None:
    async with (
        LoopbackReceiver(lambda _r: Reply.json({"decision": "deny", "reason": "r"})) as receiver,
        HookRuntime(
            f"sqlite:///{tmp_path / 'c.db'}",
            workers=0,
            master_key=master_key,
            allow_private_targets=True,
        ) as runtime,
    ):
        reg = await runtime.registrations.create(
            org="acme",
            topics=["user_logged_in"],
            url=receiver.url,
            secret="a-signing-secret-of-enough-length",
            headers={"X-Shared-Token": HEADER_VALUE},
        )
        result = await runtime.call("user_logged_in", CLAIMS, org="acme")
    (line,) = lines(logged, "hookruntime.call")
    assert line["level"] == "info"
    assert (line["event"], line["org"], line["topic"]) == (result.call_id, "acme", "user_logged_in")
    assert line["status"] == "deny" and line["latency_ms"] > 0
    assert line["registration"] == [reg.id]
    assert line["receivers"] == [
        {
            "registration": reg.id,
            "status": "deny",
            "http_status": 200,
            "attempt": 1,
            "latency_ms": line["receivers"][0]["latency_ms"],
        }
    ]
    everything = logged.getvalue()
    assert HEADER_VALUE not in everything and "a-signing-secret" not in everything


async def test_a_disabled_registration_goes_through_the_configured_tree_only(
    tmp_path: Path, master_key: str, logged: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With no handler anywhere, Python prints warnings through its last-resort handler
    # on stderr: an embedded runtime must not, and a configured one uses its own.
    last_resort = io.StringIO()
    monkeypatch.setattr(logging, "lastResort", logging.StreamHandler(last_resort))
    async with (
        LoopbackReceiver(lambda _r: Reply(status=410)) as receiver,
        HookRuntime(
            f"sqlite:///{tmp_path / 'd.db'}",
            workers=1,
            master_key=master_key,
            allow_private_targets=True,
        ) as runtime,
    ):
        reg = await runtime.registrations.create(
            org="acme", topics=["punch.create"], url=receiver.url
        )
        await runtime.emit("punch.create", PUNCH, org="acme")
        await eventually(lambda: any("disabled" in line["message"] for line in lines(logged)))
        (line,) = [line for line in lines(logged) if "disabled" in line["message"]]
        assert line["level"] == "warning"
        assert (line["registration"], line["org"]) == (reg.id, "acme")
        assert "410" in line["reason"]
        # Unconfigured (no handler on the root at all): nothing reaches the last resort.
        root = logging.getLogger()
        handlers = list(root.handlers)
        for handler in handlers:
            root.removeHandler(handler)
        try:
            again = await runtime.registrations.create(
                org="acme", topics=["punch.create"], url=receiver.url
            )
            await runtime.emit("punch.create", PUNCH, org="acme")
            await _until_inactive(runtime, again.id)
            await runtime.attempts.flush()
        finally:
            for handler in handlers:
                root.addHandler(handler)
    assert last_resort.getvalue() == ""


async def _until_inactive(runtime: HookRuntime, registration_id: str) -> None:
    async def inactive() -> bool:
        reg = await runtime.registrations.get(registration_id, org="acme")
        return not reg.active

    await eventually(inactive)


def _run(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hookruntime.cli", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_cli_logs_start_up_as_json_lines_saying_database_workers_topics_and_plugins(
    tmp_path: Path,
) -> None:
    database = tmp_path / "cli.db"
    result = _run(
        "migrate", "--database-url", f"sqlite:///{database}", "--log-level", "info",
        env={"HOOKRUNTIME_LOG_FORMAT": "json"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    opened = [json.loads(line) for line in result.stderr.splitlines()]
    (start,) = [line for line in opened if line["message"].startswith("hookruntime open")]
    assert start["logger"] == "hookruntime" and start["level"] == "info"
    assert start["database"] == f"sqlite+aiosqlite:///{database}"
    assert start["workers"] == 0 and start["topics"] > 10
    assert {"identity", "booking", "workforce", "verification"} <= set(start["plugins"])
    # Below the chosen level, nothing; a bad format is refused plainly.
    quiet = _run("migrate", "--database-url", f"sqlite:///{database}")
    assert quiet.returncode == 0 and quiet.stderr == ""
    refused = _run("topics", env={"HOOKRUNTIME_LOG_FORMAT": "xml"})
    assert refused.returncode == 2 and "log format" in refused.stderr


def test_serve_logs_its_listen_address_in_text_format(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        sys.executable, "-m", "hookruntime.cli", "serve", "--port", str(port),
        "--database-url", f"sqlite:///{tmp_path / 'serve.db'}",
    ]  # fmt: skip
    seen = []
    with subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    ) as process:
        assert process.stderr is not None
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                line = process.stderr.readline()
                seen.append(line)
                if "Application startup complete" in line:
                    break
        finally:
            process.terminate()
            process.wait(timeout=30)
    text = "".join(seen)
    assert f"INFO hookruntime.cli: listening on http://127.0.0.1:{port} " in text
    assert "INFO hookruntime: hookruntime open on sqlite: 1 workers" in text
    assert "INFO hookruntime.cli: start-up heap frozen: " in text
    # The server's own lines go through the same handler and format.
    assert "INFO uvicorn.error: Application startup complete" in text


def test_a_url_in_an_error_is_logged_without_its_query_or_user_info(logged: io.StringIO) -> None:
    from hookruntime.observe.logs import log_results
    from hookruntime.queue.policy import NextState
    from hookruntime.queue.records import Record

    error = "InvalidURL: https://svc:pw-123@crm.example/hooks?token=tok-456 refused"
    log_results(
        [
            Record(
                delivery_id="dlv_1", event_id="evt_1", registration_id="reg_1", org_id="acme",
                topic="punch.create", number=1, next_state=NextState("failed"), status_code=None,
                error=error, latency_ms=2.0, response=None, at=time.time(), lease_token="ls_1",
            )
        ]
    )  # fmt: skip
    (line,) = lines(logged, "hookruntime.delivery")
    assert line["error"] == "InvalidURL: https://crm.example/hooks refused"
    assert "tok-456" not in logged.getvalue() and "pw-123" not in logged.getvalue()
