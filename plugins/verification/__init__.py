"""Face verification and liveness hooks (seed 002, Face Recognition Service).

All queued, sent with the ``envelope`` profile; samples are the ``data`` of the
seed's payload examples.
"""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

from hookruntime import SimplePlugin, Topic

__all__ = ["plugin"]

SAMPLES: dict[str, dict[str, Any]] = json.loads(
    files(__name__).joinpath("samples.json").read_text(encoding="utf-8")
)

_SESSION = {"user_id": {"type": "string"}, "session_id": {"type": "string"}}
_SCHEMAS: dict[str, dict[str, Any]] = {
    "verification": {
        "type": "object",
        "required": ["user_id", "session_id"],
        "properties": {
            **_SESSION,
            "success": {"type": "boolean"},
            "confidence": {"type": "number"},
        },
    },
    "liveness": {
        "type": "object",
        "required": ["user_id", "session_id"],
        "properties": {
            **_SESSION,
            "is_live": {"type": "boolean"},
            "liveness_score": {"type": "number"},
        },
    },
    "batch": {
        "type": "object",
        "required": ["batch_id"],
        "properties": {"batch_id": {"type": "string"}, "results": {"type": "array"}},
    },
    "reference": {
        "type": "object",
        "required": ["reference_id", "user_id"],
        "properties": {"reference_id": {"type": "string"}, "user_id": {"type": "string"}},
    },
}


def _topic(name: str, description: str) -> Topic:
    return Topic(
        name=name,
        mode="queued",
        schema=_SCHEMAS[name.split(".")[0]],
        sample=SAMPLES[name],
        description=description,
        profile="envelope",
    )


plugin = SimplePlugin(
    name="verification",
    topics=[
        _topic("verification.started", "Verification process started."),
        _topic("verification.completed", "Verification completed (success or not)."),
        _topic("verification.failed", "Verification failed."),
        _topic("liveness.started", "Liveness check started."),
        _topic("liveness.completed", "Liveness check completed (live or not)."),
        _topic("liveness.failed", "Liveness check failed."),
        _topic("batch.completed", "A batch of images was processed."),
        _topic("reference.created", "A reference photo was stored."),
    ],
)
