"""The WEBHOOK_* settings of a static registration are checked when the runtime is built."""

from __future__ import annotations

import pytest

from hookruntime import ConfigurationError, HookRuntime

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


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"WEBHOOK_URL": "http://127.0.0.1:9/"}, "without WEBHOOK_SECRET"),
        ({"WEBHOOK_TIMEOUT": "ten"}, "WEBHOOK_TIMEOUT='ten' is not a number"),
        ({"WEBHOOK_MAX_RETRIES": "2.5"}, "is not a whole number"),
        ({"WEBHOOK_RETRY_DELAY": "-1"}, "0 or more"),
        ({"WEBHOOK_RETRY_DELAY": "nan"}, "finite"),
    ],
)
def test_bad_settings_fail_at_construction(settings: dict[str, str], message: str) -> None:
    environ = {**_environ("http://127.0.0.1:9/"), **settings}
    if "WEBHOOK_SECRET" not in settings and "without" in message:
        del environ["WEBHOOK_SECRET"]
    with pytest.raises(ConfigurationError, match=message):
        HookRuntime("sqlite:///:memory:", environ=environ)
