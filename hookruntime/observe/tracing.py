"""OpenTelemetry traces, when the ``otel`` extra is installed and a tracer provider is
set (globally, or given to the runtime); otherwise :func:`detect` answers None and the
hot paths do nothing more than test for it.

- A blocking call is a span, with a child per receiver; each request carries the
  child's W3C ``traceparent``.
- ``emit`` stores the emitting span's ``traceparent`` with the event. Each delivery
  attempt is a span of its own trace, linked to that one, and sends its own
  ``traceparent`` to the receiver.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select

from ..store.models import EVENTS

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer

    from ..blocking.result import CallResult, Outcome
    from ..queue.claim import Claimed
    from ..queue.lanes import Request
    from ..queue.records import Record
    from ..store.engine import Database

__all__ = ["Tracing", "current_traceparent", "detect"]

TRACEPARENT = "traceparent"
log = logging.getLogger("hookruntime.tracing")


def detect(provider: Any = None) -> Tracing | None:
    """Tracing through ``provider``, else the global provider once one is set; None when
    OpenTelemetry is not installed or no provider is set."""
    try:
        from opentelemetry import trace
    except ImportError:
        return None
    if provider is None:
        provider = trace.get_tracer_provider()
        if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
            return None
    from .. import __version__

    return Tracing(provider.get_tracer("hookruntime", __version__))


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the span current here, if any. Without OpenTelemetry
    imported by anyone, one dictionary look-up."""
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return None
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


class Tracing:
    def __init__(self, tracer: Tracer) -> None:
        from opentelemetry import trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self._trace = trace
        self._tracer = tracer
        self._w3c = TraceContextTextMapPropagator()
        # Delivery attempts sent and not yet finished, by the claim they were sent under.
        self._attempts: dict[Claimed, Span] = {}

    # -- blocking calls ------------------------------------------------------------

    async def call(
        self, topic: str, org: str, run: Callable[[], Awaitable[CallResult]]
    ) -> CallResult:
        """``run()`` (the call) inside its span; receivers' spans become its children."""
        attributes = {"hookruntime.topic": topic, "hookruntime.org": org}
        with self._tracer.start_as_current_span(f"call {topic}", attributes=attributes) as span:
            result = await run()
            span.set_attributes(
                {
                    "hookruntime.call_id": result.call_id,
                    "hookruntime.decision": "allow" if result.allowed else "deny",
                    "hookruntime.partial": result.partial,
                }
            )
            return result

    async def receiver(
        self, registration_id: str, run: Callable[[], Awaitable[Outcome]]
    ) -> Outcome:
        """``run()`` (one receiver's part in a call) inside a child span."""
        trace = self._trace
        with self._tracer.start_as_current_span(
            "call receiver",
            kind=trace.SpanKind.CLIENT,
            attributes={"hookruntime.registration": registration_id},
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                outcome = await run()
            except BaseException:
                # Cancelled: the call ended first (decided, or out of time).
                span.set_attribute("hookruntime.status", "unfinished")
                raise
            span.set_attributes(_outcome_attributes(outcome.status, outcome.http_status))
            span.set_attribute("hookruntime.attempts", outcome.attempts)
            if outcome.failed:
                span.set_status(trace.Status(trace.StatusCode.ERROR, outcome.detail))
            return outcome

    def inject(self, headers: dict[str, str]) -> None:
        """Add the current span's ``traceparent`` to ``headers``."""
        self._w3c.inject(headers)

    # -- deliveries ----------------------------------------------------------------

    async def sending(
        self, database: Database, batch: Iterable[tuple[Claimed, Request]]
    ) -> list[Request]:
        """Start a span per attempt, linked to its event's emitting span, and give each
        request its own ``traceparent``."""
        pairs = list(batch)
        event_ids = list({item.event_id for item, _ in pairs})
        try:
            emitted = await database.transaction(lambda conn: _traceparents(conn, event_ids))
        except Exception:
            # Spans without their links are better than deliveries held up for them.
            log.warning("could not read the events' trace context", exc_info=True)
            emitted = {}
        trace = self._trace
        requests = []
        for item, request in pairs:
            links = []
            parent = emitted.get(item.event_id)
            if parent is not None:
                linked = self._w3c.extract({TRACEPARENT: parent})
                context = trace.get_current_span(linked).get_span_context()
                if context.is_valid:
                    links.append(trace.Link(context))
            span = self._tracer.start_span(
                f"deliver {item.topic}",
                context=trace.set_span_in_context(trace.INVALID_SPAN),  # a trace of its own
                kind=trace.SpanKind.PRODUCER,
                links=links,
                attributes={
                    "hookruntime.topic": item.topic,
                    "hookruntime.org": item.org_id,
                    "hookruntime.event": item.event_id,
                    "hookruntime.delivery": item.id,
                    "hookruntime.registration": item.registration_id,
                    "hookruntime.attempt": item.attempts + 1,
                },
            )
            self._attempts[item] = span
            headers = dict(request.headers)
            self._w3c.inject(headers, trace.set_span_in_context(span))
            requests.append(replace(request, headers=headers))
        return requests

    def attempted(self, item: Claimed, record: Record | None) -> None:
        """End the attempt's span (``record`` None: it was not sent)."""
        span = self._attempts.pop(item, None)
        if span is None:
            return
        if record is None:
            span.set_attribute("hookruntime.status", "not sent")
        else:
            span.set_attributes(_outcome_attributes(record.next_state.status, record.status_code))
            if record.next_state.status != "delivered":
                span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, record.error))
        span.end()


def _outcome_attributes(status: str, http_status: int | None) -> dict[str, Any]:
    attributes: dict[str, Any] = {"hookruntime.status": status}
    if http_status is not None:
        attributes["http.response.status_code"] = http_status
    return attributes


def _traceparents(conn: Connection, event_ids: list[str]) -> Mapping[str, str]:
    rows = conn.execute(
        select(EVENTS.c.id, EVENTS.c.traceparent).where(
            EVENTS.c.id.in_(event_ids), EVENTS.c.traceparent.is_not(None)
        )
    )
    return {event_id: parent for event_id, parent in rows}
