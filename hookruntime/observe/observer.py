"""The one object the hot paths call into: metrics (when on) and log lines per batch of
delivery results, per blocking call and per registration disabled for failing, and a trace
span (when on) per delivery attempt."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .logs import log_call, log_results
from .metrics import Metrics
from .tracing import Tracing

if TYPE_CHECKING:
    from ..blocking.result import CallResult
    from ..queue.claim import Claimed
    from ..queue.records import Record

__all__ = ["Observer"]

log = logging.getLogger("hookruntime")


class Observer:
    """What the worker and the blocking caller report to. Without ``metrics`` it only
    logs (and logging at INFO off costs one level check per batch or call); ``tracing``
    is set when the runtime opens, if OpenTelemetry is on."""

    def __init__(self, metrics: Metrics | None = None, tracing: Tracing | None = None) -> None:
        self.metrics = metrics
        self.tracing = tracing

    def recorded(self, records: Sequence[Record]) -> None:
        """A batch of delivery results, written."""
        if self.metrics is not None:
            self.metrics.recorded(records)
        log_results(records)

    def attempted(self, item: Claimed, record: Record | None) -> None:
        """One delivery attempt came back (``record`` None: it was not sent)."""
        if self.tracing is not None:
            self.tracing.attempted(item, record)

    def disabled(self, org: str, registration_id: str, reason: str) -> None:
        """A registration was disabled for failing (its org's notice is written)."""
        log.warning(
            "registration %s of org %s disabled: %s",
            registration_id,
            org,
            reason,
            extra={"registration": registration_id, "org": org, "reason": reason},
        )
        if self.metrics is not None:
            self.metrics.disabled.inc()

    def called(self, org: str, result: CallResult) -> None:
        """A blocking call, finished."""
        if self.metrics is not None:
            self.metrics.called(result)
        log_call(org, result)
