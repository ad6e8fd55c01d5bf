"""Checks of the arguments of the public Python API (the hook methods, keys, deliveries),
so that a wrong type is a :class:`~hookruntime.errors.ValidationError` naming the
argument, never a ``TypeError``, ``ValueError`` or driver error from somewhere below.

They cost an ``isinstance`` each. Whether an emitted event's ``data`` is JSON is only
asked once something below has failed on it: encoding it up front would cost an emit
~2-11 µs more per event. A blocking call's data is encoded up front (once per call,
beside a network round trip), which also refuses NaN before any receiver sees it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from .errors import FieldError, ValidationError
from .store.orgs import valid_org

__all__ = ["check_hook", "check_ids", "check_json", "check_session", "documents", "json_data"]


_ORG = "must be a string of 1 to 64 letters, digits, . _ -"


def check_hook(
    topic: object,
    org: object,
    *,
    deadline: object = None,
    key: object = None,
    registration_id: object = None,
    optional_topic: bool = False,
) -> None:
    """Raise ValidationError listing every argument of the wrong type or value."""
    errors: list[FieldError] = []
    if (topic is not None or not optional_topic) and (not isinstance(topic, str) or not topic):
        errors.append(FieldError("topic", f"must be a topic name (a string), not {_kind(topic)}"))
    if not valid_org(org):
        errors.append(FieldError("org", _ORG))
    if deadline is not None and not _seconds(deadline):
        errors.append(FieldError("deadline", "must be a finite number of seconds above 0"))
    if key is not None and not isinstance(key, str):
        errors.append(FieldError("key", f"must be a string or None, not {_kind(key)}"))
    if registration_id is not None and not isinstance(registration_id, str):
        errors.append(FieldError("registration_id", "must be a string or None"))
    if errors:
        raise ValidationError(errors)


def _seconds(value: object) -> bool:
    """A finite number of seconds above 0 (an int too large for a float is not)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value) and value > 0
    except OverflowError:
        return False


def check_ids(org: object, **ids: object) -> None:
    """For the control plane: ``org`` a valid org name, each of ``ids`` a string or None.
    (On PostgreSQL a number where a text id belongs would fail in the driver.)"""
    errors = [] if valid_org(org) else [FieldError("org", _ORG)]
    errors.extend(
        FieldError(name, f"must be a string, not {_kind(value)}")
        for name, value in ids.items()
        if value is not None and not isinstance(value, str)
    )
    if errors:
        raise ValidationError(errors)


def documents(items: object, keys: object) -> list[Any]:
    """``emit_many``'s items as a list, checked with their ``keys``."""
    errors: list[FieldError] = []
    listed: list[Any] = []
    if isinstance(items, str | bytes | Mapping) or not isinstance(items, Iterable):
        errors.append(FieldError("items", f"must be an iterable of events, not {_kind(items)}"))
    else:
        listed = list(items)
    if keys is not None:
        if isinstance(keys, str | bytes) or not isinstance(keys, Sequence):
            errors.append(FieldError("keys", "must be a sequence of strings or None"))
        elif any(k is not None and not isinstance(k, str) for k in keys):
            errors.append(FieldError("keys", "every key must be a string or None"))
    if errors:
        raise ValidationError(errors)
    return listed


def check_session(session: object) -> None:
    if session is not None and not isinstance(session, AsyncSession):
        raise ValidationError.single("session", "must be an SQLAlchemy AsyncSession or None")


def check_json(data: object) -> None:
    try:
        json.dumps(data, allow_nan=False)
    except (TypeError, ValueError) as why:
        raise ValidationError.single("data", f"is not JSON: {why}") from None


@contextmanager
def json_data(items: Sequence[Any]) -> Iterator[None]:
    """Turn a TypeError or ValueError raised on ``items`` that are not JSON into a
    ValidationError naming the item; any other one goes on as it is."""
    try:
        yield
    except (TypeError, ValueError) as exc:
        for index, item in enumerate(items):
            try:
                json.dumps(item, allow_nan=False)
            except (TypeError, ValueError) as why:
                field = "data" if len(items) == 1 else f"data.{index}"
                raise ValidationError.single(field, f"is not JSON: {why}") from exc
        raise


def _kind(value: object) -> str:
    return "None" if value is None else type(value).__name__
