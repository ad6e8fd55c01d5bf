"""Helpers for receivers: verify a request of any profile, and drop repeated event ids.

::

    from hookruntime.receiver import verify, Deduplicator

    seen = Deduplicator()
    message = verify("standard", request.headers, await request.body(), secret)
    if seen.first(message.event_id):
        handle(message.payload)

Only :class:`~hookruntime.errors.VerificationError` escapes ``verify``; the timestamp
tolerance is a parameter.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence

from .errors import HookRuntimeError, VerificationError
from .profiles import PROFILES, Verified

__all__ = ["DEFAULT_TOLERANCE", "Deduplicator", "Verified", "verify"]

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
