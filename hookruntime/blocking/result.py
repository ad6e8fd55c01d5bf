"""What a blocking call returns: one outcome per registration, merged into one result."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .merge import Conflict, apply_merge_patch

__all__ = ["FAILURES", "CallResult", "Outcome", "Status"]

Status = Literal["ok", "deny", "timeout", "error", "invalid", "circuit_open", "cancelled"]

#: Statuses that are failures, answered by the registration's failure policy.
FAILURES = frozenset({"timeout", "error", "invalid", "circuit_open"})


@dataclass(frozen=True)
class Outcome:
    """One registration's part in a call. ``latency`` is in seconds; ``detail`` says
    precisely what went wrong (or the deny reason)."""

    registration_id: str
    status: Status
    http_status: int | None = None
    latency: float = 0.0
    detail: str | None = None
    attempts: int = 0
    reason: str | None = None
    user_message: str | None = None
    patch: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def failed(self) -> bool:
        return self.status in FAILURES

    def to_dict(self) -> dict[str, Any]:
        return {
            "registration_id": self.registration_id,
            "status": self.status,
            "http_status": self.http_status,
            "latency_ms": round(self.latency * 1000, 3),
            "detail": self.detail,
            "attempts": self.attempts,
        }


@dataclass(frozen=True)
class CallResult:
    """The merged answer of every receiver of a blocking call.

    ``allowed`` is False when any receiver denied (or failed with policy ``deny``);
    ``reason`` and ``user_message`` come from the first deny in registration order.
    ``patch`` is the merged JSON Merge Patch of the allowing receivers (empty when
    denied); ``apply()`` applies it to the call's data or to ``doc``.
    """

    call_id: str
    topic: str
    allowed: bool
    reason: str | None
    user_message: str | None
    patch: dict[str, Any]
    outcomes: tuple[Outcome, ...]
    partial: bool
    conflicts: tuple[Conflict, ...]
    elapsed: float
    data: Any = field(default=None, repr=False)

    def apply(self, doc: Any = None) -> Any:
        """The document with the merged patch applied (a copy; the input is unchanged)."""
        return apply_merge_patch(self.data if doc is None else doc, self.patch)

    def to_dict(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "topic": self.topic,
            "allowed": self.allowed,
            "reason": self.reason,
            "user_message": self.user_message,
            "patch": self.patch,
            "partial": self.partial,
            "conflicts": [c.to_dict() for c in self.conflicts],
            "outcomes": [o.to_dict() for o in self.outcomes],
            "elapsed_ms": round(self.elapsed * 1000, 3),
        }
