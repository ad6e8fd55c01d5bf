"""The retry decision, pure: given the attempt just made and what came of it, when (if
ever) to try again. No I/O, no clock: ``now`` and the jitter source are arguments.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Literal

from ..profiles import RetryPolicy

__all__ = ["MAX_RETRY_AFTER", "Decision", "Result", "decide", "parse_retry_after"]

#: A receiver's ``Retry-After`` is honoured up to this many seconds.
MAX_RETRY_AFTER = 3600.0
#: Jitter adds up to this fraction to a delay, never subtracts.
JITTER = 0.2


@dataclass(frozen=True, slots=True)
class Result:
    """What one attempt came to: an HTTP status, or an error before any (``status=None``)."""

    status: int | None
    error: str | None = None
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass(frozen=True, slots=True)
class Decision:
    status: Literal["delivered", "failed", "dead"]
    next_at: float | None = None
    disable: bool = False
    reason: str | None = None


def decide(
    attempt: int,
    result: Result,
    policy: RetryPolicy,
    now: float,
    *,
    max_attempts: int | None = None,
    jitter: Callable[[], float] = random.random,
) -> Decision:
    """Attempt ``attempt`` (1-based) ended with ``result``: delivered, retry at
    ``next_at``, or dead. ``max_attempts`` defaults to 1 + the number of delays; past
    the schedule's end its last delay repeats."""
    if result.ok:
        return Decision("delivered")
    if result.status == 410:
        return Decision("dead", disable=True, reason="receiver answered 410 Gone")
    limit = policy.attempts if max_attempts is None else max_attempts
    if attempt >= limit:
        return Decision("dead", reason=f"gave up after {attempt} attempt(s)")
    schedule = policy.schedule or (0.0,)
    delay = schedule[min(attempt - 1, len(schedule) - 1)] * (1 + JITTER * jitter())
    if result.retry_after is not None:
        delay = max(delay, min(result.retry_after, MAX_RETRY_AFTER))
    return Decision("failed", next_at=now + delay)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date)."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        moment = parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, moment - now)
