"""Settings, read from ``HOOKRUNTIME_*`` environment variables and validated once.

Arguments given to :class:`~hookruntime.HookRuntime` or CLI flags override the
environment; nothing needs a config file.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from .errors import ConfigurationError
from .store.namespace import NAMESPACE, Namespace

__all__ = ["DEFAULT_DATABASE_URL", "Settings"]

DEFAULT_DATABASE_URL = "sqlite:///hookruntime.db"
HTTP_CLIENTS = ("aiohttp", "httpx", "reqwest")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class Settings:
    """Every setting, each read from ``HOOKRUNTIME_<NAME>`` (e.g. ``HOOKRUNTIME_DATABASE_URL``)."""

    database_url: str = DEFAULT_DATABASE_URL
    master_key: str | None = None
    allow_private_targets: bool = False
    workers: int = 1
    # Sender lanes per worker. Measured with one registration (cap 64): 64 lanes
    # 1.9k/s, 128 lanes 2.1k/s, 256 lanes 1.7k/s; 128 also leaves room for others.
    concurrency: int = 128
    registration_concurrency: int = 64
    # Send from a process of its own beside each delivery loop (see the README's
    # Performance section for what it buys on a machine with a core to spare).
    sender_process: bool = False
    lease: float = 60.0
    retention: float = 7 * 86_400.0
    disable_after_failures: int = 50
    disable_after: float = 86_400.0
    host: str = "127.0.0.1"
    port: int = 8000
    # Prometheus metrics (``GET /metrics``; ``hookruntime worker --metrics-port``).
    metrics: bool = True
    # "auto": "reqwest" where pyreqwest is installed (it spends a third less CPU per
    # delivery, see the README's Performance section), else "aiohttp"; a sender process
    # sends with it too. "httpx" lets a host's pytest-httpx mocks see hookruntime's
    # requests.
    http_client: str = "auto"
    # The HTTP API's token buckets, per API key: requests per second, and bursts.
    # A test reaches every receiver of a topic: fewer of them than of events and calls.
    events_rate: float = 200.0
    events_burst: float = 400.0
    calls_rate: float = 200.0
    calls_burst: float = 400.0
    tests_rate: float = 5.0
    tests_burst: float = 20.0
    # hookruntime's own namespace in a shared database. Both are read once, from the
    # process's environment, when hookruntime is imported (the tables are built then);
    # None here means "as imported", and a different value is refused, not ignored.
    table_prefix: str | None = None
    schema: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``environ`` (default ``os.environ``); ``overrides`` that are not
        None win over the environment."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f"HOOKRUNTIME_{f.name.upper()}")
            if raw is not None:
                values[f.name] = _cast(f.name, f.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ConfigurationError(f"unknown settings: {', '.join(sorted(unknown))}")
        return replace(cls(), **values).checked()

    @property
    def namespace(self) -> Namespace:
        """The prefix and schema the tables are named with (the process's)."""
        return NAMESPACE

    def checked(self) -> Settings:
        NAMESPACE.check()
        for name, value, current in (
            ("table_prefix", self.table_prefix, NAMESPACE.prefix),
            ("schema", self.schema, NAMESPACE.schema),
        ):
            if value is not None and value != current:
                raise ConfigurationError(
                    f"HOOKRUNTIME_{name.upper()}={value!r} differs from {current!r}, the value "
                    "when hookruntime was imported: set it in the environment before the import"
                )
        if self.workers < 0:
            raise ConfigurationError("workers must be 0 or more")
        if not 1 <= self.concurrency <= 10_000:
            raise ConfigurationError("concurrency must be between 1 and 10000")
        if not 0 < self.port < 65536:
            raise ConfigurationError("port must be between 1 and 65535")
        if self.http_client == "auto":
            native = importlib.util.find_spec("pyreqwest") is not None
            return replace(self, http_client="reqwest" if native else "aiohttp").checked()
        if self.http_client not in HTTP_CLIENTS:
            raise ConfigurationError(
                f"http_client must be one of {', '.join(HTTP_CLIENTS)} (or auto)"
            )
        if self.http_client == "reqwest" and importlib.util.find_spec("pyreqwest") is None:
            raise ConfigurationError(
                "http_client=reqwest needs pyreqwest: pip install 'hookruntime[reqwest]'"
            )
        if self.http_client == "httpx" and self.sender_process:
            # pytest-httpx patches this interpreter only: a sender process would send for real.
            raise ConfigurationError(
                "http_client=httpx is for pytest-httpx's mocks, which a sender process "
                "escapes: leave sender_process off"
            )
        if self.registration_concurrency < 1:
            raise ConfigurationError("registration_concurrency must be at least 1")
        if not 2 <= self.lease <= 3600:
            raise ConfigurationError("lease must be from 2 to 3600 seconds")
        if self.retention <= 0 or self.disable_after < 0 or self.disable_after_failures < 1:
            raise ConfigurationError(
                "retention must be positive, disable_after non-negative, "
                "disable_after_failures at least 1"
            )
        for what in ("events", "calls", "tests"):
            rate, burst = getattr(self, f"{what}_rate"), getattr(self, f"{what}_burst")
            # Written as ranges, so that NaN fails too.
            if not (0 < rate <= 1e6 and 1 <= burst <= 1e6):
                raise ConfigurationError(
                    f"{what}_rate must be above 0 and {what}_burst at least 1 "
                    "(both at most 1000000)"
                )
        return self


def _cast(name: str, kind: Any, raw: str) -> Any:
    variable = f"HOOKRUNTIME_{name.upper()}"
    if kind in ("bool", bool):
        if raw.strip().lower() in _TRUE:
            return True
        if raw.strip().lower() in _FALSE:
            return False
        raise ConfigurationError(f"{variable}={raw!r} is not a boolean (use 1 or 0)")
    if kind in ("int", int):
        try:
            return int(raw)
        except ValueError:
            raise ConfigurationError(f"{variable}={raw!r} is not an integer") from None
    if kind in ("float", float):
        try:
            return float(raw)
        except ValueError:
            raise ConfigurationError(f"{variable}={raw!r} is not a number") from None
    if kind == "str | None":
        return raw or None
    return raw
