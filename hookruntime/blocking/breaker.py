"""A circuit breaker per registration, shared by every call in the process.

Closed: calls go through; outcomes are kept for a rolling ``window``. Once at least
``min_calls`` were seen and the failure ratio reaches ``ratio``, the breaker opens:
calls are answered by the failure policy at once, without the network. After
``cooldown`` one call (the probe) goes through, half-open; its success closes the
breaker, its failure opens it again. Timeouts count as failures.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Breaker", "BreakerPolicy", "Breakers"]

State = Literal["closed", "open", "half_open"]


@dataclass(frozen=True)
class BreakerPolicy:
    window: float = 30.0
    min_calls: int = 5
    ratio: float = 0.5
    cooldown: float = 10.0


@dataclass
class Breaker:
    policy: BreakerPolicy
    state: State = "closed"
    opened_at: float = 0.0
    probing: bool = False
    _seen: deque[tuple[float, bool]] = field(default_factory=deque)
    _failures: int = 0

    def allow(self, now: float | None = None) -> bool:
        """May a call go to the network now? In half-open, only one probe at a time."""
        moment = time.monotonic() if now is None else now
        if self.state == "closed":
            return True
        if self.state == "open" and moment - self.opened_at >= self.policy.cooldown:
            self.state = "half_open"
            self.probing = False
        if self.state == "half_open" and not self.probing:
            self.probing = True
            return True
        return False

    def record(self, ok: bool, now: float | None = None) -> None:
        moment = time.monotonic() if now is None else now
        if self.state == "half_open":
            self.probing = False
            if ok:
                self.state = "closed"
                self._seen.clear()
                self._failures = 0
            else:
                self._open(moment)
            return
        if self.state == "open":
            return
        self._seen.append((moment, ok))
        self._failures += not ok
        while moment - self._seen[0][0] > self.policy.window:
            self._failures -= not self._seen.popleft()[1]
        total = len(self._seen)
        if total >= self.policy.min_calls and self._failures / total >= self.policy.ratio:
            self._open(moment)

    def release(self) -> None:
        """A probe that ended without a verdict (cancelled) lets the next one try."""
        if self.state == "half_open":
            self.probing = False

    def _open(self, moment: float) -> None:
        self.state = "open"
        self.opened_at = moment
        self._seen.clear()
        self._failures = 0


class Breakers:
    """The breakers of one process, by registration id."""

    def __init__(self, policy: BreakerPolicy | None = None) -> None:
        self.policy = policy or BreakerPolicy()
        self._by_registration: dict[str, Breaker] = {}

    def states(self) -> list[tuple[str, State]]:
        """``(registration id, state)`` of every breaker (for metrics)."""
        return [(rid, breaker.state) for rid, breaker in self._by_registration.items()]

    def __getitem__(self, registration_id: str) -> Breaker:
        breaker = self._by_registration.get(registration_id)
        if breaker is None:
            breaker = self._by_registration[registration_id] = Breaker(self.policy)
        return breaker
