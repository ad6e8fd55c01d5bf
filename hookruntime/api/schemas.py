"""The API's request bodies and query parameters as JSON Schema, for the OpenAPI
document. Every bound is the constant the validation itself checks against, so the
document cannot promise what a request is refused for."""

from __future__ import annotations

from typing import Any

from ..profiles import PROFILES
from ..profiles.base import MAX_SECRET
from ..queue.deliveries import RETRYABLE, STATUSES
from ..queue.outbox import MAX_KEY
from ..registrations import MAX_GRACE
from ..validation import (
    MAX_ATTEMPTS,
    MAX_DELAY,
    MAX_DESCRIPTION,
    MAX_HEADER_VALUE,
    MAX_HEADERS,
    MAX_PRIORITY,
    MAX_SCHEDULE,
    MAX_TIMEOUT,
    MAX_TOPICS,
    MAX_URL,
)
from .io import MAX_DEADLINE, MAX_PAGE, MAX_PARAM, MAX_TIME

__all__ = [
    "CALL",
    "CHANGE",
    "CREATE",
    "EVENT",
    "FILTER",
    "IDEMPOTENCY_KEY",
    "OBJECT",
    "PAGE",
    "QUERY",
    "ROTATE",
    "TEXT",
    "TOPIC_ONLY",
]

Schema = dict[str, Any]

OBJECT: Schema = {"type": "object"}
_TIME: Schema = {"type": "number", "minimum": -MAX_TIME, "maximum": MAX_TIME}
_TOPICS: Schema = {
    "type": "array",
    "items": {"type": "string"},
    "minItems": 1,
    "maxItems": MAX_TOPICS,
}
_REGISTRATION_FIELDS: Schema = {
    "topics": _TOPICS,
    "topic": {"type": "string"},
    "events": _TOPICS,
    "url": {"type": "string", "pattern": "^https?://", "maxLength": MAX_URL},
    "secret": {"type": "string", "maxLength": MAX_SECRET},
    "profile": {"enum": sorted(PROFILES)},
    "priority": {"type": "integer", "minimum": -MAX_PRIORITY, "maximum": MAX_PRIORITY},
    "on_failure": {"enum": ["ignore", "deny", None]},
    "timeout": {"type": ["number", "null"], "exclusiveMinimum": 0, "maximum": MAX_TIMEOUT},
    "ordered": {"type": "boolean"},
    "headers": {
        "type": "object",
        "maxProperties": MAX_HEADERS,
        "additionalProperties": {"type": "string", "minLength": 1, "maxLength": MAX_HEADER_VALUE},
    },
    "retry_schedule": {
        "type": ["array", "null"],
        "maxItems": MAX_SCHEDULE,
        "items": {"type": "number", "minimum": 0, "maximum": MAX_DELAY},
    },
    "max_attempts": {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_ATTEMPTS},
    "signed_responses": {"type": "boolean"},
    "active": {"type": "boolean"},
    "is_active": {"type": "boolean"},
    "description": {"type": ["string", "null"], "maxLength": MAX_DESCRIPTION},
    "rev": {"type": "string"},
}
CREATE: Schema = {
    "type": "object",
    "additionalProperties": False,
    "properties": _REGISTRATION_FIELDS,
    "required": ["url"],
    "anyOf": [{"required": ["topics"]}, {"required": ["topic"]}, {"required": ["events"]}],
}
CHANGE: Schema = {
    "type": "object",
    "additionalProperties": False,
    "properties": _REGISTRATION_FIELDS,
    "required": ["rev"],
}
TOPIC_ONLY: Schema = {
    "type": "object",
    "additionalProperties": False,
    "required": ["topic"],
    "properties": {"topic": {"type": "string"}},
}
ROTATE: Schema = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "rev": {"type": "string"},
        "secret": {"type": "string", "maxLength": MAX_SECRET},
        "grace": {"type": "number", "minimum": 0, "maximum": MAX_GRACE},
    },
}
EVENT: Schema = {
    "type": "object",
    "additionalProperties": False,
    "required": ["topic", "data"],
    "properties": {
        "topic": {"type": "string"},
        "data": {},
        "key": {"type": ["string", "null"], "minLength": 1, "maxLength": MAX_KEY},
    },
}
CALL: Schema = {
    "type": "object",
    "additionalProperties": False,
    "required": ["topic", "data"],
    "properties": {
        "topic": {"type": "string"},
        "data": {},
        "deadline": {"type": ["number", "null"], "exclusiveMinimum": 0, "maximum": MAX_DEADLINE},
    },
}
FILTER: Schema = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "status": {"enum": list(RETRYABLE)},
        "topic": {"type": "string"},
        "registration_id": {"type": "string"},
        "since": _TIME,
        "until": _TIME,
    },
}
PAGE: Schema = {
    "type": "object",
    "required": ["items", "next"],
    "properties": {
        "items": {"type": "array", "items": OBJECT},
        "next": {"type": ["string", "null"]},
    },
}
#: Query parameters by name; any other is a string.
QUERY: dict[str, Schema] = {
    "limit": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
    "since": _TIME,
    "until": _TIME,
    "status": {"enum": list(STATUSES)},
}
#: The ``Idempotency-Key`` header: printable ASCII, no space at either end, as long as
#: the runtime takes.
IDEMPOTENCY_KEY: Schema = {
    "type": "string",
    "pattern": rf"^[\x21-\x7e]([\x20-\x7e]{{0,{MAX_KEY - 2}}}[\x21-\x7e])?$",
}
#: A path or query parameter that no other schema bounds.
TEXT: Schema = {"type": "string", "maxLength": MAX_PARAM}
