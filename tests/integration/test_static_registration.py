"""Seed 002's WEBHOOK_* settings define one registration at start-up, kept up to date."""

from __future__ import annotations

from pathlib import Path

import pytest

from hookruntime import ConfigurationError, HookRuntime
from hookruntime.receiver import verify
from hookruntime.static import MARK
from hookruntime.testing import LoopbackReceiver, Reply, eventually

pytestmark = pytest.mark.anyio

SECRET = "a-secret-of-at-least-thirty-two-characters"


def _environ(url: str, **extra: str) -> dict[str, str]:
    return {
        "WEBHOOK_URL": url,
        "WEBHOOK_SECRET": SECRET,
        "WEBHOOK_TIMEOUT": "10",
        "WEBHOOK_MAX_RETRIES": "3",
        "WEBHOOK_RETRY_DELAY": "1",
        "HOOKRUNTIME_ORG": "face",
        **extra,
    }


def _runtime(tmp_path: Path, master_key: str, environ: dict[str, str] | None) -> HookRuntime:
    return HookRuntime(
        f"sqlite:///{tmp_path / 'hooks.db'}",
        master_key=master_key,
        allow_private_targets=True,
        environ=environ,
    )


async def test_the_settings_become_one_envelope_registration_that_delivers(
    tmp_path: Path, master_key: str
) -> None:
    async with LoopbackReceiver(lambda _r: Reply.json({"status": "received"})) as rx:
        async with _runtime(tmp_path, master_key, _environ(rx.url)) as runtime:
            [reg] = await runtime.registrations.list(org="face")
            assert (reg.url, reg.profile, reg.description) == (rx.url, "envelope", MARK)
            assert "verification.completed" in reg.topics
            assert "liveness.completed" in reg.topics
            assert reg.timeout == 10
            assert reg.retry_schedule == (1, 2, 4)  # 3 retries, doubling from 1 s
            assert reg.max_attempts == 4
            await runtime.emit(
                "verification.completed", {"user_id": "u1", "session_id": "s1"}, org="face"
            )
            await eventually(lambda: len(rx.received) == 1)
        request = rx.received[0]
        verify("envelope", request.headers, request.body, SECRET)
        assert request.json()["event_type"] == "verification.completed"


async def test_reopening_changes_nothing_and_a_changed_setting_updates_it(
    tmp_path: Path, master_key: str
) -> None:
    url = "http://127.0.0.1:9/hook"
    async with _runtime(tmp_path, master_key, _environ(url)) as runtime:
        [first] = await runtime.registrations.list(org="face")
    async with _runtime(tmp_path, master_key, _environ(url)) as runtime:
        [again] = await runtime.registrations.list(org="face")
    assert (again.id, again.rev) == (first.id, first.rev)

    changed = _environ(url, WEBHOOK_SECRET="another-secret-of-at-least-32-characters!")
    changed.pop("WEBHOOK_MAX_RETRIES")
    changed.pop("WEBHOOK_RETRY_DELAY")
    async with _runtime(tmp_path, master_key, changed) as runtime:
        [updated] = await runtime.registrations.list(org="face")
        assert updated.id == first.id and updated.rev != first.rev
        assert updated.retry_schedule is None  # the profile's own 1, 2, 4, 8 s again
        assert await runtime.registrations.secret_matches(
            updated.id, org="face", secret=changed["WEBHOOK_SECRET"]
        )


async def test_a_dotenv_file_in_the_working_directory_is_read(
    tmp_path: Path, master_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("WEBHOOK_URL", "WEBHOOK_SECRET", "WEBHOOK_EVENTS", "WEBHOOK_ORG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOOKRUNTIME_ORG", "face")
    (tmp_path / ".env").write_text(
        "# Webhook Configuration\n"
        "WEBHOOK_URL=http://127.0.0.1:9/api/webhook\n"
        f'WEBHOOK_SECRET="{SECRET}"\n'
        "WEBHOOK_EVENTS=liveness.completed\n"
        "UNRELATED=1\n"
    )
    async with _runtime(tmp_path, master_key, None) as runtime:
        [reg] = await runtime.registrations.list(org="face")
    assert reg.topics == ("liveness.completed",)
    assert reg.url == "http://127.0.0.1:9/api/webhook"


async def test_a_runtime_that_does_not_migrate_writes_no_registration(
    tmp_path: Path, master_key: str
) -> None:
    async with _runtime(tmp_path, master_key, {}) as runtime:
        pass  # creates the schema
    url = f"sqlite:///{tmp_path / 'hooks.db'}"
    async with HookRuntime(
        url, master_key=master_key, auto_migrate=False, environ=_environ("http://127.0.0.1:9/")
    ) as runtime:
        assert await runtime.registrations.list(org="face") == []


async def test_a_secret_the_profile_refuses_fails_the_start(
    tmp_path: Path, master_key: str
) -> None:
    environ = _environ("http://127.0.0.1:9/", WEBHOOK_SECRET="short")
    with pytest.raises(ConfigurationError, match="WEBHOOK_.*secret.*32 characters"):
        async with _runtime(tmp_path, master_key, environ):
            pass
