"""Choosing the HTTP client backend, and a client used before it is open."""

from __future__ import annotations

import importlib.util

import pytest

from hookruntime import HookRuntime
from hookruntime.config import Settings
from hookruntime.errors import ConfigurationError, TransportError
from hookruntime.http.httpx_client import HttpxClient

pytestmark = pytest.mark.anyio


def test_the_default_backend_is_reqwest_where_installed_in_either_layout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings.from_env({}).http_client == "reqwest"
    assert Settings.from_env({}, sender_process=True).http_client == "reqwest"
    assert Settings.from_env({"HOOKRUNTIME_HTTP_CLIENT": "aiohttp"}).http_client == "aiohttp"
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: None if name == "pyreqwest" else real(name, *args),
    )
    assert Settings.from_env({}).http_client == "aiohttp"
    with pytest.raises(ConfigurationError, match=r"hookruntime\[reqwest\]"):
        Settings.from_env({}, http_client="reqwest")


def test_the_backend_setting_takes_reqwest_in_either_layout() -> None:
    assert HookRuntime(http_client="reqwest", environ={}).settings.http_client == "reqwest"
    beside = HookRuntime(http_client="reqwest", sender_process=True, environ={}).settings
    assert beside.http_client == "reqwest" and beside.sender_process
    with pytest.raises(ConfigurationError, match="aiohttp, httpx, reqwest"):
        HookRuntime(environ={"HOOKRUNTIME_HTTP_CLIENT": "requests"})


async def test_posting_before_open_is_a_transport_error() -> None:
    with pytest.raises(TransportError, match="not open"):
        await HttpxClient().post("https://example.com/", {}, b"", timeout=1)


def test_an_unknown_client_backend_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="http_client must be one of aiohttp, httpx"):
        HookRuntime(environ={"HOOKRUNTIME_HTTP_CLIENT": "requests"})
