"""HookRuntime takes a whole Settings object; its keyword arguments win over it."""

from __future__ import annotations

import pytest

from hookruntime import HookRuntime
from hookruntime.config import Settings
from hookruntime.errors import ConfigurationError


def test_keyword_arguments_win_over_the_settings_object() -> None:
    runtime = HookRuntime(settings=Settings(workers=2, concurrency=8), workers=0)
    assert (runtime.settings.workers, runtime.settings.concurrency) == (0, 8)


def test_a_settings_object_is_checked_like_the_environment() -> None:
    with pytest.raises(ConfigurationError, match="lease"):
        HookRuntime(settings=Settings(lease=1.0))
