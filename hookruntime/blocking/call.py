"""One blocking call under way and its bookkeeping: what its receivers' attempts share,
when nothing still running can change its result, its budget, the detail its first
attempt row keeps, and its outcomes reduced in registration order into a
:class:`CallResult`.
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

from ..catalog import Topic
from ..errors import ValidationError
from ..profiles.base import compact_json
from ..store.attempts import CallAttempt
from ..targets import Target
from .depth import HOOK_DEPTH_HEADER, current_depth
from .merge import combine
from .result import CallResult, Outcome

__all__ = ["CallUnderWay", "call_budget", "call_detail", "reduce_outcomes"]

#: One encoder for every call's detail (json.dumps with an option builds one per call).
_DETAIL = json.JSONEncoder(ensure_ascii=False)


class CallUnderWay:
    """One call under way: what its receivers' attempts share.

    ``end`` is on the event loop's clock. ``rows`` holds the attempt rows until the call
    is decided (None after: rows of receivers that unwind later are recorded as they
    come). ``decided`` is set once nothing still running can change the result."""

    __slots__ = (
        "data",
        "decided",
        "end",
        "extra",
        "id",
        "outcomes",
        "raw",
        "rows",
        "targets",
        "topic",
    )

    def __init__(
        self, call_id: str, topic: Topic, targets: tuple[Target, ...], data: Any, end: float
    ) -> None:
        self.id = call_id
        self.topic = topic
        self.targets = targets
        self.data = data
        self.raw = _encoded(data) if targets else None
        self.end = end
        self.outcomes: list[Outcome | None] = [None] * len(targets)
        self.rows: list[CallAttempt] | None = []
        self.decided: asyncio.Future[None] | None = None
        self.extra = {HOOK_DEPTH_HEADER: str(current_depth() + 1)}

    def arrived(self, index: int, outcome: Outcome) -> None:
        self.outcomes[index] = outcome
        decided = self.decided
        if decided is not None and not decided.done() and _decided(self):
            decided.set_result(None)


def call_detail(result: CallResult | None, budget: float, requested: float | None) -> str:
    """The call's outcome as its attempt log keeps it (no decision when it was cut off)."""
    detail: dict[str, Any] = {
        "deadline_ms": round(budget * 1000, 3),
        "requested_deadline_ms": None if requested is None else round(requested * 1000, 3),
    }
    if result is not None:
        detail["allowed"] = result.allowed
        detail["reason"] = result.reason
        detail["partial"] = result.partial
        detail["conflicts"] = [c.to_dict() for c in result.conflicts]
    return _DETAIL.encode(detail)


def call_budget(topic: Topic, deadline: float | None) -> float:
    """The call's time in seconds: the topic's deadline, or the caller's when sooner."""
    assert topic.deadline is not None
    if deadline is None:
        return topic.deadline
    if (
        isinstance(deadline, bool)
        or not isinstance(deadline, int | float)
        or not (math.isfinite(deadline) and deadline > 0)
    ):
        raise ValidationError.single("deadline", "must be a positive number of seconds")
    return min(float(deadline), topic.deadline)


def _denies(topic: Topic, target: Target, outcome: Outcome) -> bool:
    if outcome.status == "deny":
        return True
    return outcome.failed and (target.on_failure or topic.on_failure) == "deny"


def _decided(call: CallUnderWay) -> bool:
    """True once nothing still running can change the result: every receiver is done,
    or one denies and every receiver before it in order is done."""
    topic = call.topic
    for target, outcome in zip(call.targets, call.outcomes, strict=True):
        if outcome is None:
            return False
        if _denies(topic, target, outcome):
            return True
    return True


def _encoded(data: Any) -> bytes | None:
    """``data`` serialised once for every receiver of the call. Not when it already
    holds the member ``jws`` appends (``webhook_request_id``): the profile then
    replaces it rather than appending a second one."""
    if isinstance(data, dict) and "webhook_request_id" in data:
        return None
    return compact_json(data)


def reduce_outcomes(
    topic: Topic,
    targets: tuple[Target, ...],
    outcomes: list[Outcome],
    call_id: str,
    data: Any,
    elapsed: float,
) -> CallResult:
    """The first denial in registration order decides; otherwise the allowing answers'
    patches are merged."""
    allowed, reason, user_message, partial = True, None, None, False
    for target, outcome in zip(targets, outcomes, strict=True):
        if _denies(topic, target, outcome):
            if allowed:
                allowed, user_message = False, outcome.user_message
                reason = (
                    outcome.reason or f"denied by registration {target.registration_id}"
                    if outcome.status == "deny"
                    else f"registration {target.registration_id} failed ({outcome.status}: "
                    f"{outcome.detail}) and its failure policy is deny"
                )
        elif outcome.failed:
            partial = True
    patch: dict[str, Any] = {}
    conflicts: list[Any] = []
    if allowed:
        patch, conflicts = combine(
            (o.registration_id, o.patch) for o in outcomes if o.status == "ok" and o.patch
        )
    return CallResult(
        call_id,
        topic.name,
        allowed,
        reason,
        user_message,
        patch,
        tuple(outcomes),
        partial,
        tuple(conflicts),
        elapsed,
        data,
    )
