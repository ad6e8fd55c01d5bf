"""The runtime's own topics: changes to an org's registrations, and a test event, sent to
that org's subscribers.

These are core, not plugin content, because the runtime itself emits them
(``webhook.disabled`` when a receiver keeps failing). Payload names follow the
webhook configuration documents of seed 002.
"""

from __future__ import annotations

from typing import Any

from .catalog import Topic
from .profiles.base import iso_timestamp

__all__ = ["OPERATIONAL_TOPICS", "registration_summary"]

_SUMMARY: dict[str, Any] = {
    "type": "object",
    "required": ["webhook_id", "url", "events", "is_active", "timestamp"],
    "properties": {
        "webhook_id": {"type": "string"},
        "url": {"type": "string"},
        "events": {"type": "array", "items": {"type": "string"}},
        "is_active": {"type": "boolean"},
        "reason": {"type": "string"},
        "timestamp": {"type": "string"},
    },
}
_SUMMARY_SAMPLE: dict[str, Any] = {
    "webhook_id": "wh_001",
    "url": "https://your-crm.com/api/webhook",
    "events": ["verification.completed", "liveness.completed"],
    "is_active": True,
    "timestamp": "2026-01-27T05:54:00Z",
}
_TEST: dict[str, Any] = {
    "type": "object",
    "required": ["message"],
    "properties": {
        "message": {"type": "string"},
        "webhook_id": {"type": "string"},
        "timestamp": {"type": "string"},
    },
}
_TEST_SAMPLE = {
    "message": "Webhook test successful",
    "webhook_id": "wh_001",
    "timestamp": "2026-01-27T05:52:00Z",
}


def _change(name: str, description: str, **sample: Any) -> Topic:
    return Topic(
        name=name,
        mode="queued",
        schema=_SUMMARY,
        sample={**_SUMMARY_SAMPLE, **sample},
        description=description,
    )


OPERATIONAL_TOPICS: tuple[Topic, ...] = (
    _change("webhook.created", "A registration was created in the org."),
    _change("webhook.updated", "A registration of the org was changed."),
    _change("webhook.deleted", "A registration of the org was deleted.", is_active=False),
    _change(
        "webhook.disabled",
        "A registration was disabled: its receiver answered 410 or kept failing.",
        is_active=False,
        reason="receiver answered 410 Gone",
    ),
    Topic(
        name="webhook.test",
        mode="queued",
        schema=_TEST,
        sample=_TEST_SAMPLE,
        description="A test webhook, sent on request to check a receiver.",
    ),
)


def registration_summary(
    registration_id: str,
    url: str,
    topics: list[str],
    active: bool,
    at: float,
    reason: str | None = None,
) -> dict[str, Any]:
    """The ``data`` of a ``webhook.*`` change event, as of ``at`` (epoch seconds); the
    one place such a summary is built."""
    summary: dict[str, Any] = {
        "webhook_id": registration_id,
        "url": url,
        "events": topics,
        "is_active": active,
        "timestamp": iso_timestamp(at),
    }
    if reason is not None:
        summary["reason"] = reason
    return summary
