"""Booking hooks: a booking workflow (seed 001) and a scheduling platform's resources (seed 003).

``booking_updated`` and ``booking_state_changed`` are queued and, emitted with the
booking id as ``key``, stay in order for registrations that ask for ordering.
``before_confirmation`` and ``before_reminder`` are blocking (seed 003's "Sync"
rows). The resource topics carry the app scopes seed 003 requires to subscribe.
"""

from __future__ import annotations

from typing import Any

from hookruntime import SimplePlugin, Topic

from .resources import RESOURCE_TOPICS

__all__ = ["plugin"]

BOOKING_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "state"],
    "properties": {
        "id": {"type": "string", "minLength": 1},
        "rev": {"type": "string"},
        "state": {"type": "string"},
        "workflow": {"type": "string"},
        "customer": {"type": "object"},
        "service": {"type": "object"},
        "resources": {"type": "array"},
        "start": {"type": "string"},
        "end": {"type": "string"},
    },
}

BOOKING_SAMPLE: dict[str, Any] = {
    "id": "booking_2b7d",
    "rev": "4-8812",
    "state": "confirmed",
    "workflow": "clinical_skills",
    "customer": {"id": "profile_org_id", "email": "john@doe.com"},
    "service": {"id": "svc_osce", "name": "OSCE practice"},
    "resources": [{"id": "room_12", "name": "Room 12"}],
    "start": "2026-02-03T09:00:00Z",
    "end": "2026-02-03T10:00:00Z",
}

STATE_CHANGED_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["booking", "transition"],
    "properties": {
        "booking": BOOKING_SCHEMA,
        "transition": {
            "type": "object",
            "required": ["name", "from", "to"],
            "properties": {
                "name": {"type": "string"},
                "from": {"type": "string"},
                "to": {"type": "string"},
            },
        },
        "actions": {"type": "array", "items": {"type": "object"}},
    },
}

STATE_CHANGED_SAMPLE: dict[str, Any] = {
    "booking": BOOKING_SAMPLE,
    "transition": {"name": "confirm", "from": "requested", "to": "confirmed"},
    "actions": [{"name": "send_confirmation_email", "status": "processed"}],
}

SYNC_SCOPES = ("events", "customers", "resources", "services")


def _sync(name: str, description: str) -> Topic:
    return Topic(
        name=name,
        mode="blocking",
        schema=BOOKING_SCHEMA,
        sample=BOOKING_SAMPLE,
        scopes=SYNC_SCOPES,
        description=description,
        deadline=3.0,
        on_failure="ignore",
        reserved=("/id", "/state"),
        profile="jws",
    )


plugin = SimplePlugin(
    name="booking",
    topics=[
        Topic(
            name="booking_updated",
            mode="queued",
            schema=BOOKING_SCHEMA,
            sample=BOOKING_SAMPLE,
            description="A booking was saved, even without changes; carries the booking.",
            profile="jws",
        ),
        Topic(
            name="booking_state_changed",
            mode="queued",
            schema=STATE_CHANGED_SCHEMA,
            sample=STATE_CHANGED_SAMPLE,
            description="A workflow transition ran; the booking, the transition and its actions.",
            profile="jws",
        ),
        _sync("before_confirmation", "Before a booking is confirmed; receivers may deny or patch."),
        _sync("before_reminder", "Before a reminder is sent; receivers may deny or patch."),
        *RESOURCE_TOPICS,
    ],
)
