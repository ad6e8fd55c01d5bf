"""The request of a delivery as its receiver gets it, re-rendered from the stored event
with the registration's profile, with every secret and signature redacted.

The attempt log keeps responses, not requests: re-rendering is exact for the body
(the payload is stored as sent) and differs only in the signing timestamp.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from ..profiles import PROFILES, Message
from ..runtime import HookRuntime
from ..store.models import EVENTS, REGISTRATIONS

__all__ = ["REDACTED", "WireRequest", "rendered_request"]

REDACTED = "[redacted]"
_JWS = re.compile(rb"^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$")


@dataclass(frozen=True)
class WireRequest:
    url: str
    headers: list[tuple[str, str]]
    body: str
    #: A JWS body's payload, decoded for reading.
    decoded: str | None = None


def _redact_body(body: bytes, secrets: list[str]) -> str:
    jws = _JWS.match(body.strip())
    if jws is not None:
        return f"{jws.group(1).decode()}.{jws.group(2).decode()}.{REDACTED}"
    text = body.decode("utf-8", "replace")
    try:
        document: Any = json.loads(text)
    except ValueError:
        document = None
    if isinstance(document, dict) and "signature" in document:
        document["signature"] = REDACTED
        text = json.dumps(document, ensure_ascii=False)
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text


async def rendered_request(
    runtime: HookRuntime, org: str, registration_id: str, event_id: str
) -> WireRequest | None:
    """The request one delivery sends, redacted; None when its event or registration is gone."""
    async with runtime.database.engine.connect() as conn:
        registration = (
            (
                await conn.execute(
                    select(REGISTRATIONS).where(
                        REGISTRATIONS.c.id == registration_id, REGISTRATIONS.c.org_id == org
                    )
                )
            )
            .mappings()
            .first()
        )
        event = (
            (
                await conn.execute(
                    select(EVENTS.c.topic, EVENTS.c.payload).where(
                        EVENTS.c.id == event_id, EVENTS.c.org_id == org
                    )
                )
            )
            .mappings()
            .first()
        )
    if registration is None or event is None:
        return None
    row = dict(registration)
    secrets = runtime.registrations.secrets(row)
    custom = runtime.registrations.headers(row)
    signed = PROFILES[row["profile"]].render(
        Message(
            event["topic"],
            event_id,
            None,
            secrets,
            integration_id=row["integration_id"],
            raw=event["payload"].encode(),
        )
    )
    hidden = [s for s in (*secrets, *custom.values()) if len(s) >= 4]
    headers = []
    for name, value in {**custom, **signed.headers}.items():
        if name in custom or "signature" in name.lower() or any(s in value for s in hidden):
            value = REDACTED
        headers.append((name, value))
    return WireRequest(
        row["url"], headers, _redact_body(signed.body, hidden), _jws_payload(signed.body)
    )


def _jws_payload(body: bytes) -> str | None:
    jws = _JWS.match(body.strip())
    if jws is None:
        return None
    part = jws.group(2)
    try:
        return base64.urlsafe_b64decode(part + b"=" * (-len(part) % 4)).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
