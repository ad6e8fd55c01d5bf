"""Rate limits of the API: a token bucket per API key, one set per app, sized by
:class:`~hookruntime.Settings` (``HOOKRUNTIME_EVENTS_RATE``, ``_BURST`` and the like)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from starlette.requests import Request

from ..config import Settings
from .problems import HTTPProblem

__all__ = ["Limiters", "RateLimiter", "limiters"]


class RateLimiter:
    """A token bucket per API key: ``rate`` ``what`` per second, bursts of ``burst``."""

    def __init__(self, rate: float, burst: float, what: str = "events") -> None:
        self.rate, self.burst, self.what = rate, burst, what
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str, cost: float = 1.0) -> None:
        now = time.monotonic()
        tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < cost:
            wait = math.ceil((cost - tokens) / self.rate)
            raise HTTPProblem(
                429,
                f"Too many {self.what}",
                f"this key may submit {self.rate:g} {self.what} per second",
                {"Retry-After": str(max(wait, 1))},
            )
        self._buckets[key] = (tokens - cost, now)


@dataclass(frozen=True)
class Limiters:
    """The buckets of one app: each app built by ``create_app`` counts on its own."""

    events: RateLimiter
    calls: RateLimiter
    tests: RateLimiter

    @classmethod
    def from_settings(cls, settings: Settings) -> Limiters:
        return cls(
            events=RateLimiter(settings.events_rate, settings.events_burst, "events"),
            calls=RateLimiter(settings.calls_rate, settings.calls_burst, "calls"),
            tests=RateLimiter(settings.tests_rate, settings.tests_burst, "tests"),
        )


def limiters(request: Request) -> Limiters:
    """The buckets of the app serving ``request``."""
    found: Limiters = request.app.state.limiters
    return found
