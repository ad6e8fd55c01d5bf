"""Whether `serve` and `worker` send from a child process: a spare core, the flags, the
environment, and the native client."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.mark.parametrize(
    ("flag", "environ", "cores", "expected"),
    [
        (None, {}, 2, True),  # a core to spare: the sender process
        (None, {}, 1, False),  # one core: one process
        (False, {}, 2, False),  # --no-sender-process wins
        (True, {}, 1, True),  # --sender-process wins
        (None, {"HOOKRUNTIME_SENDER_PROCESS": "0"}, 2, None),  # the variable is read as set
        (None, {"HOOKRUNTIME_HTTP_CLIENT": "httpx"}, 2, None),  # mocks see one process only
    ],
)
def test_serve_and_worker_send_from_a_child_process_when_a_core_is_spare(
    monkeypatch: pytest.MonkeyPatch,
    flag: bool | None,
    environ: dict[str, str],
    cores: int,
    expected: bool | None,
) -> None:
    from hookruntime import service

    monkeypatch.setattr(service.os, "sched_getaffinity", lambda _pid: set(range(cores)))
    monkeypatch.setattr(service, "CPU_MAX", Path("/nonexistent/cpu.max"))
    assert service.service_sender_process(flag, environ) is expected


@pytest.mark.parametrize(
    ("cpu_max", "expected"),
    [
        ("max 100000\n", True),  # no quota: the four CPUs it may run on
        ("200000 100000\n", True),  # two CPUs' worth
        ("100000 100000\n", False),  # a pod held to one CPU
        ("150000 100000\n", False),
        ("garbled", True),  # unreadable: the CPUs themselves
    ],
)
def test_a_container_cpu_quota_counts_as_the_cpus_there_are(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cpu_max: str, expected: bool
) -> None:
    from hookruntime import service

    (tmp_path / "cpu.max").write_text(cpu_max)
    monkeypatch.setattr(service, "CPU_MAX", tmp_path / "cpu.max")
    monkeypatch.setattr(service.os, "sched_getaffinity", lambda _pid: {0, 1, 2, 3})
    assert service.service_sender_process(None, {}) is expected


@pytest.mark.parametrize("backend", ["aiohttp", "reqwest"])
def test_a_sender_process_takes_the_configured_backend(backend: str) -> None:
    if backend == "reqwest":
        pytest.importorskip("pyreqwest", reason="the native client's extra is not installed")
    from hookruntime.config import Settings

    settings = Settings(sender_process=True, http_client=backend).checked()
    assert settings.sender_process and settings.http_client == backend


def test_httpx_with_a_sender_process_is_refused_its_mocks_would_miss_the_child() -> None:
    from hookruntime.config import Settings
    from hookruntime.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="pytest-httpx"):
        Settings(sender_process=True, http_client="httpx").checked()


def test_an_embedded_runtime_stays_one_process_by_default() -> None:
    from hookruntime import HookRuntime

    assert HookRuntime("sqlite:///:memory:", environ={}).settings.sender_process is False
