"""Envelope (seed 002): ``{"event_type","event_id","timestamp","data","signature"}``.

``X-Signature-SHA256: sha256=<hex HMAC of the body>``. The envelope's own ``signature``
field is ``sha256=<hex HMAC>`` of the envelope without that field, serialised compactly
with the keys in the order above. Secrets are at least 32 characters.
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
    compact_json,
    header,
    hmac_sha256,
    iso_timestamp,
    load_json,
    parse_iso,
    text_secret_problem,
)

__all__ = ["EnvelopeProfile"]

_FIELDS = ("event_type", "event_id", "timestamp", "data")


def _sign(secret: str, content: bytes) -> str:
    return "sha256=" + hmac_sha256(secret.encode(), content).hex()


class EnvelopeProfile:
    name = "envelope"
    content_type = "application/json"
    min_secret_length = 32
    retry = RetryPolicy(schedule=(1, 2, 4, 8), timeout=10.0)

    def render(self, message: Message) -> SignedRequest:
        secret = message.secrets[0]
        head = compact_json(
            {
                "event_type": message.topic,
                "event_id": message.event_id,
                "timestamp": iso_timestamp(message.timestamp),
            }
        )
        inner = head[:-1] + b',"data":' + message.payload_json() + b"}"
        signature = compact_json({"signature": _sign(secret, inner)})
        body = inner[:-1] + b"," + signature[1:]
        return SignedRequest(
            headers={"content-type": self.content_type, "x-signature-sha256": _sign(secret, body)},
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
        offered = header(headers, "X-Signature-SHA256")
        if not any(hmac.compare_digest(offered, _sign(s, body)) for s in secrets):
            raise VerificationError("X-Signature-SHA256 does not match")
        document = load_json(body)
        if not isinstance(document, dict) or any(f not in document for f in _FIELDS):
            raise VerificationError("body is not an envelope")
        inner = compact_json({f: document[f] for f in _FIELDS})
        if not any(
            hmac.compare_digest(str(document.get("signature")), _sign(s, inner)) for s in secrets
        ):
            raise VerificationError("envelope 'signature' field does not match")
        moment = parse_iso(str(document["timestamp"]))
        check_tolerance(moment, now, tolerance)
        return Verified(
            document["data"], str(document["event_id"]), str(document["event_type"]), moment
        )

    def secret_problem(self, secret: str) -> str | None:
        return text_secret_problem(secret, self.min_secret_length, self.name)

    def generate_secret(self) -> str:
        return random.token_urlsafe(36)
