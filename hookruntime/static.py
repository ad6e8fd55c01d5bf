"""One registration defined by settings, as seed 002 (Face Recognition) configures it.

Its guide says to put these in ``.env``::

    WEBHOOK_URL=https://your-crm.com/api/webhook
    WEBHOOK_SECRET=your-secret-key-min-32-chars
    WEBHOOK_TIMEOUT=10
    WEBHOOK_MAX_RETRIES=3
    WEBHOOK_RETRY_DELAY=1

With ``WEBHOOK_URL`` set, a runtime that migrates (``serve``, ``worker``, an embedded
runtime with ``auto_migrate``) creates that registration as it opens, and brings it up to
date when the settings change. It sends the ``envelope`` profile (``X-Signature-SHA256``)
for every queued topic whose default profile that is (the verification plugin's), or for the
topics listed in ``WEBHOOK_EVENTS``, to org ``WEBHOOK_ORG`` (else ``HOOKRUNTIME_ORG``, else
``default``). The retry schedule stays the profile's (1, 2, 4, 8 s) unless
``WEBHOOK_MAX_RETRIES`` or ``WEBHOOK_RETRY_DELAY`` is set: then ``MAX_RETRIES`` retries,
doubling from ``RETRY_DELAY`` seconds.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .catalog import Catalog
from .errors import ConfigurationError, ValidationError
from .registrations import Registration, Registrations

__all__ = ["MARK", "StaticRegistration", "apply", "read_env_file"]

#: The description that marks the registration these settings own.
MARK = "static: from the WEBHOOK_* settings"
_NAMES = (
    "WEBHOOK_URL",
    "WEBHOOK_SECRET",
    "WEBHOOK_TIMEOUT",
    "WEBHOOK_MAX_RETRIES",
    "WEBHOOK_RETRY_DELAY",
    "WEBHOOK_EVENTS",
    "WEBHOOK_ORG",
)


def read_env_file(path: Path) -> dict[str, str]:
    """The ``WEBHOOK_*`` lines of a ``.env`` file (``NAME=value``, ``#`` comments, optional
    quotes); a missing file is empty."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}") from exc
    found: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.strip().removeprefix("export ").partition("=")
        name = name.strip()
        if not sep or name not in _NAMES:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        else:
            value = value.split(" #", 1)[0].strip()
        found[name] = value
    return found


def _number(env: Mapping[str, str], name: str, *, whole: bool = False) -> float | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        value = float(int(raw)) if whole else float(raw)
    except ValueError:
        kind = "a whole number" if whole else "a number"
        raise ConfigurationError(f"{name}={raw!r} is not {kind}") from None
    if not math.isfinite(value) or value < 0:
        raise ConfigurationError(f"{name}={raw!r} must be a finite number, 0 or more")
    return value


@dataclass(frozen=True)
class StaticRegistration:
    org: str
    url: str
    secret: str
    topics: tuple[str, ...]
    timeout: float | None
    retry_schedule: tuple[float, ...] | None
    max_attempts: int | None

    @classmethod
    def from_env(
        cls, catalog: Catalog, environ: Mapping[str, str] | None = None
    ) -> StaticRegistration | None:
        """The registration ``environ`` defines (default: the process environment over the
        ``.env`` file in the working directory), or None without ``WEBHOOK_URL``."""
        env: Mapping[str, str]
        env = {**read_env_file(Path(".env")), **os.environ} if environ is None else environ
        url = env.get("WEBHOOK_URL", "").strip()
        if not url:
            return None
        secret = env.get("WEBHOOK_SECRET", "")
        if not secret:
            raise ConfigurationError("WEBHOOK_URL is set without WEBHOOK_SECRET")
        listed = [t.strip() for t in env.get("WEBHOOK_EVENTS", "").split(",") if t.strip()]
        topics = listed or [
            t.name for t in catalog.values() if not t.blocking and t.profile == "envelope"
        ]
        if not topics:
            raise ConfigurationError("WEBHOOK_URL is set but no topic is named or found")
        retries = _number(env, "WEBHOOK_MAX_RETRIES", whole=True)
        delay = _number(env, "WEBHOOK_RETRY_DELAY")
        schedule: tuple[float, ...] | None = None
        if retries is not None or delay is not None:
            count = 4 if retries is None else int(retries)
            first = 1.0 if delay is None else delay
            schedule = tuple(first * 2**n for n in range(count))
        org = (env.get("WEBHOOK_ORG") or env.get("HOOKRUNTIME_ORG") or "default").strip()
        return cls(
            org=org,
            url=url,
            secret=secret,
            topics=tuple(topics),
            timeout=_number(env, "WEBHOOK_TIMEOUT"),
            retry_schedule=schedule,
            max_attempts=None if schedule is None else len(schedule) + 1,
        )

    def fields(self) -> dict[str, Any]:
        return {
            "topics": list(self.topics),
            "url": self.url,
            "profile": "envelope",
            "timeout": self.timeout,
            "retry_schedule": None if self.retry_schedule is None else list(self.retry_schedule),
            "max_attempts": self.max_attempts,
        }


async def apply(static: StaticRegistration, registrations: Registrations) -> Registration:
    """Create the registration, or update what changed (nothing when nothing did)."""
    try:
        return await _apply(static, registrations)
    except ValidationError as exc:
        raise ConfigurationError(f"the WEBHOOK_* settings: {exc}") from exc


async def _apply(static: StaticRegistration, registrations: Registrations) -> Registration:
    owned = [
        r for r in await registrations.list(org=static.org, limit=1000) if r.description == MARK
    ]
    wanted = static.fields()
    if not owned:
        return await registrations.create(
            org=static.org, secret=static.secret, description=MARK, **wanted
        )
    current = owned[0]
    have = {
        "topics": list(current.topics),
        "url": current.url,
        "profile": current.profile,
        "timeout": current.timeout,
        "retry_schedule": None if current.retry_schedule is None else list(current.retry_schedule),
        "max_attempts": current.max_attempts,
    }
    changes = {name: value for name, value in wanted.items() if have[name] != value}
    if not await registrations.secret_matches(current.id, org=static.org, secret=static.secret):
        changes["secret"] = static.secret
    if not changes:
        return current
    return await registrations.update(current.id, org=static.org, rev=current.rev, **changes)
