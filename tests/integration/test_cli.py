"""The CLI as scripts use it: a real subprocess, JSON output, exit codes, env fallbacks."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import anyio
import asyncpg
import pytest


def run(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "hookruntime.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A migrated SQLite file: only migrate, serve and worker change a schema."""
    variables = {
        **os.environ,
        "HOOKRUNTIME_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "HOOKRUNTIME_ORG": "acme",
    }
    run("migrate", env=variables)
    return variables


def test_keys_create_prints_the_key_once_as_json(env: dict[str, str]) -> None:
    created = json.loads(
        run(
            "keys",
            "create",
            "--org",
            "acme",
            "--scope",
            "webhooks:manage",
            "--scope",
            "events:emit",
            "--json",
            env=env,
        ).stdout
    )
    assert set(created) >= {"key", "org", "scopes"}
    assert created["org"] == "acme" and created["scopes"] == ["webhooks:manage", "events:emit"]
    listed = run("keys", "list", "--json", env=env).stdout  # org from HOOKRUNTIME_ORG
    assert created["key"] not in listed
    assert json.loads(listed)[0]["id"] == created["id"]


def test_registrations_create_list_delete(env: dict[str, str]) -> None:
    made = json.loads(
        run(
            "registrations",
            "create",
            "--topic",
            "punch.create",
            "--url",
            "https://hr.example/in",
            "--header",
            "X-Token=abc",
            "--json",
            env=env,
        ).stdout
    )
    assert made["profile"] == "servicehook" and made["secret"]
    listed = json.loads(run("registrations", "list", "--json", env=env).stdout)
    assert [r["id"] for r in listed] == [made["id"]] and "secret" not in listed[0]
    run("registrations", "delete", made["id"], "--rev", made["rev"], env=env)
    assert json.loads(run("registrations", "list", "--json", env=env).stdout) == []


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            (
                "registrations",
                "create",
                "--topic",
                "profile_uploaded",
                "--url",
                "https://x.example",
            ),
            2,
            "did you mean 'profile_updated'",
        ),
        (("registrations", "delete", "reg_missing"), 3, "no registration 'reg_missing'"),
        (("keys", "create", "--scope", "root"), 2, "unknown scope 'root'"),
        (("keys", "revoke", "key_missing"), 3, "no active API key"),
        (("migrate", "--database-url", "mysql://x"), 5, "not supported"),
    ],
)
def test_errors_have_exit_codes_scripts_can_rely_on(
    env: dict[str, str], args: tuple[str, ...], code: int, message: str
) -> None:
    result = run(*args, env=env, check=False)
    assert result.returncode == code, result.stderr
    assert message in result.stderr


def test_help_explains_every_verb(env: dict[str, str]) -> None:
    out = run("--help", env=env).stdout
    for verb in ("serve", "migrate", "topics", "keys", "registrations"):
        assert verb in out
    assert "exit codes" in out


def test_master_key_prints_a_usable_key(env: dict[str, str]) -> None:
    from hookruntime.store import SecretBox

    key = run("master-key", env=env).stdout.strip()
    assert SecretBox(key).open(SecretBox(key).seal("x")) == "x"


def fails_in_one_line(result: subprocess.CompletedProcess[str], code: int, words: str) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert words in lines[0]


@pytest.fixture
def bare_env(tmp_path: Path) -> dict[str, str]:
    """No database made ready beforehand."""
    variables = {k: v for k, v in os.environ.items() if not k.startswith("HOOKRUNTIME_")}
    return {**variables, "HOOKRUNTIME_ORG": "acme"}


def test_a_malformed_port_variable_is_one_line_exit_2_and_help_still_works(
    bare_env: dict[str, str], tmp_path: Path
) -> None:
    bad = {**bare_env, "HOOKRUNTIME_PORT": "abc"}
    assert "exit codes" in run("--help", env=bad).stdout
    assert "--port" in run("serve", "--help", env=bad).stdout
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    fails_in_one_line(
        run("keys", "list", "--database-url", url, env=bad, check=False), 2, "HOOKRUNTIME_PORT"
    )


def test_serve_on_a_port_in_use_is_one_line_exit_1_naming_the_address(
    bare_env: dict[str, str], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("serve", "--port", str(port), "--database-url", url, env=bare_env, check=False)
    fails_in_one_line(result, 1, f"127.0.0.1:{port}")
    assert not (tmp_path / "cli.db").exists()  # refused before the database was touched


@pytest.mark.parametrize("verb", [("deliveries", "list"), ("migrate",), ("worker",)])
def test_a_sqlite_path_in_a_missing_folder_is_one_line_exit_5(
    bare_env: dict[str, str], tmp_path: Path, verb: tuple[str, ...]
) -> None:
    url = f"sqlite:///{tmp_path / 'missing' / 'hooks.db'}"
    result = run(*verb, "--database-url", url, env=bare_env, check=False)
    fails_in_one_line(result, 5, str(tmp_path / "missing"))


@pytest.mark.parametrize("verb", [("deliveries", "list"), ("migrate",), ("worker",)])
def test_a_refused_postgresql_is_one_line_exit_5(
    bare_env: dict[str, str], master_key: str, verb: tuple[str, ...], refused_port: int
) -> None:
    url = f"postgresql://postgres:hunter2@127.0.0.1:{refused_port}/hooks"
    variables = {**bare_env, "HOOKRUNTIME_MASTER_KEY": master_key}
    result = run(*verb, "--database-url", url, env=variables, check=False)
    fails_in_one_line(result, 5, "127.0.0.1")
    assert "hunter2" not in result.stderr


def test_an_unknown_postgresql_database_is_one_line_exit_5(
    bare_env: dict[str, str], master_key: str
) -> None:
    from conftest import PG_HOST

    url = f"postgresql://postgres@{PG_HOST}:5432/hookruntime_missing_{os.getpid()}"
    variables = {**bare_env, "HOOKRUNTIME_MASTER_KEY": master_key}
    result = run("migrate", "--database-url", url, env=variables, check=False)
    fails_in_one_line(result, 5, "does not exist")


async def _tables(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM information_schema.tables "
                "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
            )
        )
    finally:
        await conn.close()


@pytest.mark.anyio
async def test_reading_an_empty_postgresql_asks_for_migrate_and_creates_no_table(
    bare_env: dict[str, str], empty_pg_url: str, master_key: str
) -> None:
    variables = {**bare_env, "HOOKRUNTIME_MASTER_KEY": master_key}
    result = await anyio.to_thread.run_sync(
        lambda: run(
            "deliveries", "list", "--database-url", empty_pg_url, env=variables, check=False
        )
    )
    fails_in_one_line(result, 5, "run `hookruntime migrate`")
    assert await _tables(empty_pg_url) == 0


def test_reading_a_new_sqlite_path_asks_for_migrate_and_creates_no_file(
    bare_env: dict[str, str], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    for verb in (("deliveries", "list"), ("keys", "list"), ("emit", "punch.create", "{}")):
        fails_in_one_line(
            run(*verb, "--database-url", url, env=bare_env, check=False),
            5,
            "run `hookruntime migrate`",
        )
    assert list(tmp_path.iterdir()) == []
