"""HookRuntime takes a whole Settings object; its keyword arguments win over it."""

from __future__ import annotations

from pathlib import Path

import pytest

from hookruntime import HookRuntime
from hookruntime.config import Settings
from hookruntime.errors import ConfigurationError

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


def test_keyword_arguments_win_over_the_settings_object() -> None:
    runtime = HookRuntime(settings=Settings(workers=2, concurrency=8), workers=0)
    assert (runtime.settings.workers, runtime.settings.concurrency) == (0, 8)


def test_a_settings_object_is_checked_like_the_environment() -> None:
    with pytest.raises(ConfigurationError, match="lease"):
        HookRuntime(settings=Settings(lease=1.0))
