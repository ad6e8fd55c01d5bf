"""Workforce hooks of an attendance and visitor product (seed 000, 1UPVISION).

Data is entity-wrapped exactly as the seed sends it: ``punch.create`` carries
``{"punch": {…}}``, people events ``{"person": {…}}`` (bulk: ``{"people": […]}``),
attendance ``{"attendance": {…}}`` and visits ``{"visit": {…}}``. The
``servicehook`` profile sends that data as the body, unchanged.
"""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

from hookruntime import SimplePlugin, Topic

__all__ = ["plugin"]

#: seed 000's ``punch.create`` request body, byte for byte.
PUNCH_SAMPLE: dict[str, Any] = json.loads(
    files(__name__).joinpath("punch_create.json").read_text(encoding="utf-8")
)
PERSON_SAMPLE: dict[str, Any] = PUNCH_SAMPLE["punch"]["person"]
ATTENDANCE_SAMPLE: dict[str, Any] = PUNCH_SAMPLE["punch"]["attendance"]
VISIT_SAMPLE: dict[str, Any] = {
    "id": 7,
    "person": PERSON_SAMPLE,
    "host_name": "Front desk",
    "purpose": "Interview",
    "checkin_at": "2022-08-28T09:02:11.000000Z",
    "checkout_at": None,
    "space_id": 1,
    "organization_id": 1,
}

_ENTITY: dict[str, Any] = {"type": "object", "required": ["id"], "properties": {"id": {}}}


def _wrapped(key: str, many: bool = False) -> dict[str, Any]:
    inner: dict[str, Any] = {"type": "array", "items": _ENTITY} if many else _ENTITY
    return {"type": "object", "required": [key], "properties": {key: inner}}


def _topic(name: str, key: str, sample: Any, many: bool = False) -> Topic:
    return Topic(
        name=name,
        mode="queued",
        schema=_wrapped(key, many),
        sample={key: sample},
        description=f"{name} event, data wrapped as {{{key!r}: …}}.",
        profile="servicehook",
    )


plugin = SimplePlugin(
    name="workforce",
    topics=[
        *(_topic(f"people.{a}", "person", PERSON_SAMPLE) for a in ("create", "update", "delete")),
        *(
            _topic(f"people.bulk_{a}", "people", [PERSON_SAMPLE], many=True)
            for a in ("create", "update", "delete")
        ),
        _topic("punch.create", "punch", PUNCH_SAMPLE["punch"]),
        _topic("punch.update", "punch", PUNCH_SAMPLE["punch"]),
        _topic("attendance.create", "attendance", ATTENDANCE_SAMPLE),
        _topic("attendance.update", "attendance", ATTENDANCE_SAMPLE),
        *(_topic(f"visit.{a}", "visit", VISIT_SAMPLE) for a in ("checkin", "checkout", "update")),
    ],
)
