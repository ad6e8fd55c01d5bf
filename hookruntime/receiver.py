"""Helpers for receivers: verify a request of any profile, drop repeated event ids, and
sign the answer to a blocking call when its registration requires signed responses.

::

    from hookruntime.receiver import verify, Deduplicator

    seen = Deduplicator()
    message = verify("standard", request.headers, await request.body(), secret)
    if seen.first(message.event_id):
        handle(message.payload)

Only :class:`~hookruntime.errors.VerificationError` escapes ``verify``; the timestamp
tolerance is a parameter. A signed answer names the request it answers::

    message = verify("jws", request.headers, await request.body(), secret)
    return Response(sign_answer({"decision": "allow"}, secret, message.event_id),
                    media_type="application/jose")
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import HookRuntimeError, ValidationError, VerificationError
from .profiles import PROFILES, Verified
from .profiles.base import compact_json
from .profiles.jws import jws_sign

__all__ = ["DEFAULT_TOLERANCE", "Deduplicator", "Verified", "sign_answer", "verify"]

DEFAULT_TOLERANCE = 300.0


def verify(
    profile: str,
    headers: Mapping[str, str],
    body: bytes | str,
    secret: str | Sequence[str],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> Verified:
    """Check a received request's signature (and timestamp, where the profile has one).

    ``secret`` may be a list during a rotation: any one of them verifies.
    """
    try:
        implementation = PROFILES[profile]
    except KeyError:
        raise VerificationError(f"unknown profile {profile!r}") from None
    secrets = [secret] if isinstance(secret, str) else list(secret)
    if not secrets:
        raise VerificationError("no secret to verify with")
    raw = body.encode() if isinstance(body, str) else bytes(body)
    moment = time.time() if now is None else now
    try:
        return implementation.verify(headers, raw, secrets, tolerance=tolerance, now=moment)
    except HookRuntimeError as exc:
        if isinstance(exc, VerificationError):
            raise
        raise VerificationError(str(exc)) from exc
    except Exception as exc:  # malformed input must never leak a ValueError or KeyError
        raise VerificationError(f"malformed request: {exc!r}") from exc


def sign_answer(
    answer: Mapping[str, Any], secret: str, request_id: str | None, *, now: float | None = None
) -> bytes:
    """A compact JWS (HS256) of ``answer`` (``{"decision", "reason", "user_message",
    "patch"}``) bound to the call it answers: ``request_id`` is the id the request
    carried (``verify(...).event_id``: the JWS payload's ``webhook_request_id``, or the
    profile's id header) and ``iat`` the time of signing. The runtime refuses a signed
    answer naming another request, or signed more than 300 s away from its clock."""
    if not request_id:
        raise ValidationError.single("request_id", "give the id the request carried")
    iat = int(time.time()) if now is None else now
    claims = {**answer, "webhook_request_id": request_id, "iat": iat}
    try:
        payload = compact_json(claims)
    except (TypeError, ValueError) as exc:
        raise ValidationError.single("answer", f"is not JSON: {exc}") from None
    return jws_sign(payload, secret)


class Deduplicator:
    """Remembers event ids for ``ttl`` seconds (at most ``size`` of them), so a receiver
    handles each event once although delivery is at-least-once."""

    def __init__(self, ttl: float = 86_400.0, size: int = 100_000) -> None:
        self.ttl = ttl
        self.size = size
        self._seen: OrderedDict[str, float] = OrderedDict()

    def first(self, event_id: str | None, now: float | None = None) -> bool:
        """True the first time ``event_id`` is seen within the window."""
        if event_id is None:
            return True
        moment = time.monotonic() if now is None else now
        while self._seen:
            oldest, at = next(iter(self._seen.items()))
            if moment - at <= self.ttl and len(self._seen) < self.size:
                break
            del self._seen[oldest]
        if event_id in self._seen:
            return False
        self._seen[event_id] = moment
        return True
