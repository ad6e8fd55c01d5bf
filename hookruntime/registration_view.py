"""A registration as read: the public :class:`Registration` built from its stored row,
with the row's sealed secrets and custom header values opened only where asked."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from .store.crypto import SecretBox

__all__ = ["Registration", "open_headers", "open_secrets", "view"]


@dataclass(frozen=True)
class Registration:
    """A registration as read. ``secret`` and ``headers`` (values) are set only on
    creation and secret rotation; otherwise ``header_names`` says which are sent."""

    id: str
    org: str
    rev: str
    topics: tuple[str, ...]
    url: str
    profile: str
    priority: int
    on_failure: str | None
    timeout: float | None
    ordered: bool
    header_names: tuple[str, ...]
    retry_schedule: tuple[float, ...] | None
    max_attempts: int | None
    signed_responses: bool
    active: bool
    disabled_reason: str | None
    description: str | None
    integration_id: str
    created_at: float
    updated_at: float
    secret: str | None = None
    headers: Mapping[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for name in ("secret", "headers"):
            if data[name] is None:
                del data[name]
        data["topics"] = list(self.topics)
        data["header_names"] = list(self.header_names)
        if self.retry_schedule is not None:
            data["retry_schedule"] = list(self.retry_schedule)
        return data


def open_secrets(box: SecretBox, row: Mapping[str, Any], now: float | None = None) -> list[str]:
    """The plaintext secrets that sign for ``row``: current first, then a rotated-out
    one while its grace period lasts."""
    found = [box.open(row["secret"])]
    until = row.get("previous_secret_until")
    if row.get("previous_secret") and until and until > (now or time.time()):
        found.append(box.open(row["previous_secret"]))
    return found


def open_headers(box: SecretBox, row: Mapping[str, Any]) -> dict[str, str]:
    sealed = row.get("headers")
    return dict(json.loads(box.open(sealed))) if sealed else {}


def view(box: SecretBox, row: Mapping[str, Any], reveal: bool = False) -> Registration:
    """``row`` as a :class:`Registration`; with ``reveal``, its secret and header values
    too (on creation and secret rotation only)."""
    headers = open_headers(box, row)
    schedule = row["retry_schedule"]
    return Registration(
        id=row["id"],
        org=row["org_id"],
        rev=row["rev"],
        topics=tuple(row["topics"]),
        url=row["url"],
        profile=row["profile"],
        priority=row["priority"],
        on_failure=row["on_failure"],
        timeout=row["timeout"],
        ordered=row["ordered"],
        header_names=tuple(headers),
        retry_schedule=None if schedule is None else tuple(schedule),
        max_attempts=row["max_attempts"],
        signed_responses=row["signed_responses"],
        active=row["active"],
        disabled_reason=row.get("disabled_reason"),
        description=row["description"],
        integration_id=row["integration_id"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        secret=box.open(row["secret"]) if reveal else None,
        headers=headers if reveal else None,
    )
