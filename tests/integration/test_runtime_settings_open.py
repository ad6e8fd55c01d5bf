"""A runtime opened from a whole Settings object on a SQLite file runs with those settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from hookruntime import HookRuntime
from hookruntime.config import Settings

pytestmark = pytest.mark.anyio


async def test_a_runtime_takes_every_setting_from_a_settings_object(
    tmp_path: Path, master_key: str
) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'hooks.db'}",
        master_key=master_key,
        workers=0,
        disable_after_failures=3,
        disable_after=0.0,
        retention=60.0,
    )
    runtime = HookRuntime(settings=settings, environ={"HOOKRUNTIME_WORKERS": "4"})
    assert runtime.settings == settings.checked()  # "auto" resolved, nothing else changed
    async with runtime:
        assert runtime.workers == []
