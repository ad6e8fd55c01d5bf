"""Service hooks (seed 000): the event's data as the body, HMAC in ``X-ServiceHook-*`` headers.

``X-ServiceHook-Signature`` is the hex HMAC-SHA256 of the body with the secret;
``X-ServiceHook-UUID`` names the integration (stable per registration) and
``X-ServiceHook-Id`` carries the event id, the same on every retry.
"""

from __future__ import annotations

import hmac
import secrets as random
from collections.abc import Mapping, Sequence

from ..errors import VerificationError
from .base import (
    Message,
    RetryPolicy,
    SignedRequest,
    Verified,
    check_tolerance,
    header,
    hmac_sha256,
    iso_timestamp,
    load_json,
    parse_iso,
    text_secret_problem,
)

__all__ = ["ServiceHookProfile"]


class ServiceHookProfile:
    name = "servicehook"
    content_type = "application/json"
    min_secret_length = 16
    retry = RetryPolicy(schedule=(10, 60, 300, 1800), timeout=30.0)

    def render(self, message: Message) -> SignedRequest:
        body = message.payload_json()
        return SignedRequest(
            headers={
                "content-type": self.content_type,
                "x-servicehook-event": message.topic,
                "x-servicehook-timestamp": iso_timestamp(message.timestamp),
                "x-servicehook-uuid": message.integration_id,
                "x-servicehook-signature": hmac_sha256(message.secrets[0].encode(), body).hex(),
                "x-servicehook-id": message.event_id,
            },
            body=body,
        )

    def verify(
        self,
        headers: Mapping[str, str],
        body: bytes,
        secrets: Sequence[str],
        *,
        tolerance: float,
        now: float,
    ) -> Verified:
        offered = header(headers, "X-ServiceHook-Signature")
        moment = parse_iso(header(headers, "X-ServiceHook-Timestamp"))
        check_tolerance(moment, now, tolerance)
        if not any(
            hmac.compare_digest(offered, hmac_sha256(s.encode(), body).hex()) for s in secrets
        ):
            raise VerificationError("X-ServiceHook-Signature does not match")
        lowered = {k.lower(): v for k, v in headers.items()}
        return Verified(
            load_json(body),
            lowered.get("x-servicehook-id"),
            header(headers, "X-ServiceHook-Event"),
            moment,
        )

    def secret_problem(self, secret: str) -> str | None:
        return text_secret_problem(secret, self.min_secret_length, self.name)

    def generate_secret(self) -> str:
        return random.token_urlsafe(32)
