"""The runtime's own notices (``webhook.created``, ``webhook.disabled``, …) to an org's
subscribers, written in the transaction of the change they tell of: a change that rolls
back leaves no notice, and one that commits always has its notice. A registration's
notice keeps the trace context of the request that changed it (``traceparent``), as an
emitted event does, so that its deliveries' spans link to it; a disable, decided from
many attempts, has none.
"""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import Connection

from ..ids import new_id
from .fanout import NewEvent, fan_out
from .writing import Own

__all__ = ["write_notice"]


def write_notice(
    conn: Connection,
    org: str,
    topic: str,
    data: dict[str, Any],
    now: float | None = None,
    *,
    traceparent: str | None = None,
) -> int:
    """Write one ``topic`` event carrying ``data`` and its deliveries, all ``pending``
    for a claim, through ``conn`` (in a transaction); the number of deliveries."""
    at = time.time() if now is None else now
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    event = NewEvent(new_id("evt"), org, topic, None, payload, None, None, at, traceparent)
    postgresql = conn.dialect.name == "postgresql"
    count, _ = fan_out(Own(conn), org, topic, [event], at, postgresql=postgresql)
    return count
