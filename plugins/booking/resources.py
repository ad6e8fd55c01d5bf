"""The resource topics of seed 003 (TIMIFY), each with the app scopes its table requires.

Seed 003 lists "Event" (created, updated, deleted) and "Events" (deleted) as two
rows with the same scopes; both are the topic family ``events.*`` here.
"""

from __future__ import annotations

from typing import Any

from hookruntime import Topic

__all__ = ["RESOURCE_TOPICS"]

# (topic family, actions, required scopes, sample fields beyond id/companyId)
_TABLE: list[tuple[str, tuple[str, ...], tuple[str, ...], dict[str, Any]]] = [
    (
        "customers",
        ("created", "updated", "deleted"),
        ("customers",),
        {"firstName": "Jane", "lastName": "Roe", "email": "jane@roe.example"},
    ),
    (
        "events",
        ("created", "updated", "deleted"),
        ("events", "customers", "resources", "services"),
        {"title": "Haircut", "from": "2026-02-03T09:00:00Z", "duration": 30},
    ),
    (
        "services",
        ("created", "updated", "deleted"),
        ("resources", "services"),
        {"name": "Haircut", "duration": 30},
    ),
    ("resources", ("created", "updated", "deleted"), ("resources",), {"name": "Chair 2"}),
    ("companies", ("created", "updated", "deleted"), ("companies",), {"name": "Salon Nord"}),
    (
        "managers",
        ("created", "updated", "deleted"),
        ("bm_managers",),
        {"email": "manager@salon.example"},
    ),
    ("enterprises", ("updated",), ("enterprises",), {"name": "Salon Group"}),
    (
        "customer_fields",
        ("created", "updated", "deleted"),
        ("customer_fields",),
        {"label": "Allergies", "type": "TEXT"},
    ),
    (
        "shifts",
        ("created", "updated", "deleted"),
        ("shift", "resources"),
        {"resourceId": "res_2", "from": "2026-02-03T08:00:00Z", "to": "2026-02-03T16:00:00Z"},
    ),
    (
        "notifications",
        ("created",),
        ("notification",),
        {"type": "booking_reminder", "recipient": "jane@roe.example"},
    ),
    ("service_groups", ("created", "updated", "deleted"), ("service_group",), {"name": "Hair"}),
]

_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id"],
    "properties": {"id": {"type": "string", "minLength": 1}, "companyId": {"type": "string"}},
}


def _topics() -> list[Topic]:
    topics = []
    for family, actions, scopes, fields in _TABLE:
        for action in actions:
            topics.append(
                Topic(
                    name=f"{family}.{action}",
                    mode="queued",
                    schema=_SCHEMA,
                    sample={"id": f"{family[:3]}_1", "companyId": "cmp_1", **fields},
                    scopes=scopes,
                    description=f"A {family.replace('_', ' ')} record was {action}.",
                    profile="standard",
                )
            )
    return topics


RESOURCE_TOPICS: tuple[Topic, ...] = tuple(_topics())
