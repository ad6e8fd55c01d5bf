"""Standard Webhooks: ``webhook-id``, ``webhook-timestamp``, ``webhook-signature``.

The signature is ``v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`` where the
key is the base64 part of a ``whsec_…`` secret. During a rotation every valid secret
signs, and the signatures are listed space-separated.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
from collections.abc import Mapping, Sequence

from ..errors import VerificationError
from .base import (
    Message,
    RetryPolicy,
    SignedRequest,
    Verified,
    b64,
    check_tolerance,
    compact_json,
    header,
    hmac_sha256,
    iso_timestamp,
    load_json,
)

__all__ = ["StandardProfile"]

PREFIX = "whsec_"


def secret_key(secret: str) -> bytes:
    """The HMAC key inside a ``whsec_…`` secret (the prefix is optional)."""
    encoded = secret.removeprefix(PREFIX)
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise VerificationError("secret is not base64 after 'whsec_'") from exc


class StandardProfile:
    name = "standard"
    content_type = "application/json"
    min_secret_length = 16  # bytes of key, the Standard Webhooks minimum is 24 base64 chars
    retry = RetryPolicy(schedule=(5, 300, 1800, 7200, 18000, 36000, 36000), timeout=15.0)

    def render(self, message: Message) -> SignedRequest:
        head = compact_json({"type": message.topic, "timestamp": iso_timestamp(message.timestamp)})
        body = head[:-1] + b',"data":' + message.payload_json() + b"}"
        stamp = str(int(message.timestamp))
        return SignedRequest(
            headers={
                "content-type": self.content_type,
                "webhook-id": message.event_id,
                "webhook-timestamp": stamp,
                "webhook-signature": " ".join(
                    self.sign(secret, message.event_id, stamp, body) for secret in message.secrets
                ),
            },
            body=body,
        )

    @staticmethod
    def sign(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
        content = f"{msg_id}.{timestamp}.".encode() + body
        return "v1," + b64(hmac_sha256(secret_key(secret), content))

    def verify(
        self,
        headers: Mapping[str, str],
        body: bytes,
        secrets: Sequence[str],
        *,
        tolerance: float,
        now: float,
    ) -> Verified:
        msg_id = header(headers, "webhook-id")
        stamp = header(headers, "webhook-timestamp")
        offered = header(headers, "webhook-signature").split()
        if not stamp.isdigit():
            raise VerificationError("webhook-timestamp is not an integer")
        check_tolerance(int(stamp), now, tolerance)
        expected = {self.sign(secret, msg_id, stamp, body) for secret in secrets}
        if not any(hmac.compare_digest(o, e) for o in offered for e in expected):
            raise VerificationError("no webhook-signature matches")
        document = load_json(body)
        if not isinstance(document, dict) or "data" not in document:
            raise VerificationError("body is not a Standard Webhooks payload")
        return Verified(document["data"], msg_id, document.get("type"), float(stamp))

    def secret_problem(self, secret: str) -> str | None:
        try:
            key = secret_key(secret)
        except VerificationError:
            return "profile 'standard' needs a secret 'whsec_' + base64 (as generated)"
        if not 16 <= len(key) <= 64:
            return "profile 'standard' needs a secret key of 16 to 64 bytes"
        return None

    def generate_secret(self) -> str:
        return PREFIX + b64(os.urandom(24))
