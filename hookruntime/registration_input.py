"""What a registration write takes in: the fields ``update`` accepts, the checks made
on arguments before the store is read, and checked values turned into a stored row
(secret and custom header values sealed) and back into editable values.

Checking the fields themselves is :func:`hookruntime.validation.check_registration`'s.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .errors import FieldError, ValidationError
from .registration_view import open_headers
from .store.crypto import SecretBox

__all__ = [
    "EDITABLE",
    "MAX_GRACE",
    "check_editable",
    "check_rotation",
    "editable_values",
    "sealed_row",
]

#: Fields ``update`` accepts.
EDITABLE = frozenset(
    {
        "topics",
        "url",
        "profile",
        "secret",
        "priority",
        "on_failure",
        "timeout",
        "ordered",
        "headers",
        "retry_schedule",
        "max_attempts",
        "signed_responses",
        "active",
        "description",
    }
)


#: Longest time a rotated-out secret keeps signing beside the new one (a week).
MAX_GRACE = 7 * 86_400.0


def check_editable(changes: Mapping[str, Any]) -> None:
    unknown = set(changes) - EDITABLE
    if unknown:
        raise ValidationError(
            FieldError(name, f"unknown field; editable: {', '.join(sorted(EDITABLE))}")
            for name in sorted(unknown)
        )


def check_rotation(grace: float, rev: str | None) -> None:
    if isinstance(grace, bool) or not isinstance(grace, int | float) or not 0 <= grace <= MAX_GRACE:
        raise ValidationError.single("grace", f"must be between 0 and {MAX_GRACE:g} seconds")
    if rev is not None and not isinstance(rev, str):
        raise ValidationError.single("rev", "must be a string")


def sealed_row(box: SecretBox, values: Mapping[str, Any]) -> dict[str, Any]:
    """The stored columns of checked ``values``."""
    headers = dict(values["headers"])
    return {
        "url": values["url"],
        "topics": values["topics"],
        "profile": values["profile"],
        "secret": box.seal(values["secret"]),
        "headers": box.seal(json.dumps(headers)) if headers else None,
        "priority": values["priority"],
        "on_failure": values["on_failure"],
        "timeout": values["timeout"],
        "ordered": values["ordered"],
        "retry_schedule": values["retry_schedule"],
        "max_attempts": values["max_attempts"],
        "signed_responses": values["signed_responses"],
        "active": values["active"],
        "description": values["description"],
    }


def editable_values(box: SecretBox, row: Mapping[str, Any]) -> dict[str, Any]:
    """A stored row's editable fields but the secret, header values opened: what an
    update's changes are laid over before the whole is checked again."""
    values = {name: row[name] for name in EDITABLE if name not in ("secret", "headers")}
    values["headers"] = open_headers(box, row)
    return values
