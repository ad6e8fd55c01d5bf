"""The retry policy, pure: given the attempt just made and what came of it, the
delivery's next state: delivered, tried again at some time, or dead. No I/O, no clock:
``now`` and the jitter source are arguments.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Literal

from ..profiles import RetryPolicy

__all__ = ["MAX_RETRY_AFTER", "NextState", "next_state", "parse_retry_after"]

#: A receiver's ``Retry-After`` is honoured up to this many seconds.
MAX_RETRY_AFTER = 3600.0
#: Jitter adds up to this fraction to a delay, never subtracts.
JITTER = 0.2


@dataclass(frozen=True, slots=True)
class NextState:
    """What a delivery becomes after an attempt (``next_at``: when it is tried again)."""

    status: Literal["delivered", "failed", "dead"]
    next_at: float | None = None
    disable: bool = False
    reason: str | None = None


def next_state(
    attempt: int,
    status: int | None,
    retry_after: float | None,
    policy: RetryPolicy,
    now: float,
    *,
    max_attempts: int | None = None,
    jitter: Callable[[], float] = random.random,
) -> NextState:
    """Attempt ``attempt`` (1-based) ended with HTTP ``status`` (None: no response), the
    receiver asking for ``retry_after`` seconds or not: delivered, tried again at
    ``next_at``, or dead. ``max_attempts`` defaults to 1 + the number of delays; past the
    schedule's end its last delay repeats."""
    if status is not None and 200 <= status < 300:
        return NextState("delivered")
    if status == 410:
        return NextState("dead", disable=True, reason="receiver answered 410 Gone")
    limit = policy.attempts if max_attempts is None else max_attempts
    if attempt >= limit:
        return NextState("dead", reason=f"gave up after {attempt} attempt(s)")
    schedule = policy.schedule or (0.0,)
    delay = schedule[min(attempt - 1, len(schedule) - 1)] * (1 + JITTER * jitter())
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    return NextState("failed", next_at=now + delay)


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
