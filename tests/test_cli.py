"""The CLI as scripts use it: a real subprocess, JSON output, exit codes, env fallbacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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
    return {
        **os.environ,
        "HOOKRUNTIME_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "HOOKRUNTIME_ORG": "acme",
    }


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


def test_bench_queued_measures_every_part_in_one_run(env: dict[str, str]) -> None:
    from conftest import PG_ADMIN

    out = run("bench", "queued", "--n", "500", "--postgres-url", PG_ADMIN, "--json", env=env)
    results = json.loads(out.stdout)
    assert results["a_raw_per_second"] > 0
    for part in ("b_sqlite", "c_postgresql"):
        for way, sender in (("", True), ("_one_process", False)):
            measured = results[part + way]
            assert measured["n"] == 500 and measured["per_second"] > 0
            assert measured["sender_process"] is sender
    assert set(results["ratios"]) == {
        "b_over_a",
        "c_over_a",
        "b_one_process_over_a",
        "c_one_process_over_a",
    }
    assert results["d_idle_latency"]["n"] == 200
