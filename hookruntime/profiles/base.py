"""What every wire profile shares: the message in, the request out, signing helpers.

A profile turns a :class:`Message` (topic, event id, payload, secrets, time) into a
:class:`SignedRequest` (headers + body bytes), and verifies one on the receiving side.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Protocol

from ..errors import VerificationError

__all__ = [
    "MAX_SECRET",
    "Message",
    "Profile",
    "RetryPolicy",
    "SignedRequest",
    "Verified",
    "check_tolerance",
    "compact_json",
    "header",
    "hmac_sha256",
    "iso_timestamp",
]

#: Longest signing secret of any profile.
MAX_SECRET = 512


@dataclass(frozen=True, slots=True)
class Message:
    """One request to render: ``secrets`` holds the current secret first, then older ones
    still valid during a rotation; ``integration_id`` is stable per registration."""

    topic: str
    event_id: str
    payload: Any
    secrets: Sequence[str]
    timestamp: float = field(default_factory=time.time)
    integration_id: str = ""
    #: The payload already serialised compactly, when the caller has it (the outbox
    #: stores it so): profiles embed it as is instead of serialising again, and
    #: ``payload`` may then be None.
    raw: bytes | None = None

    def payload_json(self) -> bytes:
        return self.raw if self.raw is not None else compact_json(self.payload)


@dataclass(frozen=True, slots=True)
class SignedRequest:
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class Verified:
    """What a receiver learns from a request that verified."""

    payload: Any
    event_id: str | None
    topic: str | None
    timestamp: float | None


@dataclass(frozen=True)
class RetryPolicy:
    """Delays in seconds *between* attempts (the first attempt is immediate) and the
    per-attempt timeout. ``attempts`` is 1 + the number of delays."""

    schedule: tuple[float, ...]
    timeout: float

    @property
    def attempts(self) -> int:
        return 1 + len(self.schedule)


class Profile(Protocol):
    """A wire format: how a payload becomes headers + body, and how it is verified."""

    name: str
    content_type: str
    retry: RetryPolicy
    min_secret_length: int

    def render(self, message: Message) -> SignedRequest: ...

    def verify(
        self,
        headers: Mapping[str, str],
        body: bytes,
        secrets: Sequence[str],
        *,
        tolerance: float,
        now: float,
    ) -> Verified: ...

    def secret_problem(self, secret: str) -> str | None:
        """Why ``secret`` cannot sign for this profile, or None when it can."""

    def generate_secret(self) -> str: ...


# One encoder for every call: json.dumps with options builds a new one each time,
# which cost as much as encoding a small document.
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def compact_json(value: Any) -> bytes:
    return _COMPACT.encode(value).encode()


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@lru_cache(maxsize=64)
def _iso(second: int) -> str:
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_timestamp(moment: float) -> str:
    """``2022-08-28T17:36:59Z``: seconds precision, UTC, as the seeds write it."""
    return _iso(int(moment))


def parse_iso(value: str) -> float:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except (ValueError, TypeError) as exc:
        raise VerificationError(f"timestamp {value!r} is not ISO 8601") from exc


def header(headers: Mapping[str, str], name: str) -> str:
    """A required header, looked up case-insensitively."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    raise VerificationError(f"missing header {name}")


def check_tolerance(timestamp: float, now: float, tolerance: float) -> None:
    if abs(now - timestamp) > tolerance:
        raise VerificationError(
            f"timestamp is {now - timestamp:+.0f} s from now, outside ±{tolerance:g} s"
        )


def load_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise VerificationError("body is not JSON") from exc


def text_secret_problem(secret: str, minimum: int, profile: str) -> str | None:
    if not isinstance(secret, str) or len(secret) < minimum:
        return f"profile {profile!r} needs a secret of at least {minimum} characters"
    if len(secret) > MAX_SECRET:
        return f"secret is longer than {MAX_SECRET} characters"
    return None
