"""OpenTelemetry traces from real runs, read with the SDK's in-memory exporter: a span
per blocking call with a child per receiver, a span per delivery attempt linked to the
span that emitted the event, and W3C ``traceparent`` as the receivers saw it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import select

from hookruntime import HookRuntime
from hookruntime.store.models import EVENTS
from hookruntime.testing import LoopbackReceiver, Received, Reply, eventually

pytestmark = pytest.mark.anyio
PUNCH = {"punch": {"id": 2, "punch_type": "IN"}}
CLAIMS = {"id": "u1", "email": "u1@example.com"}


@pytest.fixture
def traced() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def parent_of(received: Received) -> tuple[int, int]:
    """(trace id, span id) of a request's ``traceparent``."""
    version, trace_id, span_id, flags = received.headers["traceparent"].split("-")
    assert version == "00" and int(flags, 16) & 1  # sampled
    return int(trace_id, 16), int(span_id, 16)


def named(spans: tuple[ReadableSpan, ...], prefix: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name.startswith(prefix)]


async def test_a_call_is_a_span_with_a_child_per_receiver_whose_traceparent_it_sends(
    tmp_path: Path, master_key: str, traced: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = traced
    async with (
        LoopbackReceiver(lambda _r: Reply.json({"decision": "allow"})) as first,
        LoopbackReceiver(lambda _r: Reply(status=500)) as second,
        HookRuntime(
            f"sqlite:///{tmp_path / 't.db'}",
            workers=0,
            master_key=master_key,
            allow_private_targets=True,
            tracer_provider=provider,
        ) as runtime,
    ):
        one = await runtime.registrations.create(
            org="acme", topics=["user_logged_in"], url=first.url, priority=0
        )
        two = await runtime.registrations.create(
            org="acme", topics=["user_logged_in"], url=second.url, priority=1
        )
        result = await runtime.call("user_logged_in", CLAIMS, org="acme", deadline=0.5)
    spans = exporter.get_finished_spans()
    (call,) = named(spans, "call user_logged_in")
    assert call.attributes is not None
    assert call.attributes["hookruntime.call_id"] == result.call_id
    assert call.attributes["hookruntime.decision"] == "allow"
    assert call.attributes["hookruntime.partial"] is True
    children = {s.attributes["hookruntime.registration"]: s for s in named(spans, "call receiver")}  # type: ignore[index]
    assert set(children) == {one.id, two.id}
    for child in children.values():
        assert child.parent is not None and child.parent.span_id == call.context.span_id
        assert child.context.trace_id == call.context.trace_id
    assert children[one.id].attributes["hookruntime.status"] == "ok"  # type: ignore[index]
    assert children[two.id].attributes["hookruntime.status"] == "error"  # type: ignore[index]
    assert children[two.id].attributes["http.response.status_code"] == 500  # type: ignore[index]
    # Each receiver saw its own span as the parent of the request (one retry on 500).
    assert parent_of(first.received[0]) == (call.context.trace_id, children[one.id].context.span_id)
    assert {parent_of(r) for r in second.received} == {
        (call.context.trace_id, children[two.id].context.span_id)
    }


@pytest.mark.parametrize("sending", ["0", "1"], ids=["one-process", "sender-process"])
async def test_each_delivery_attempt_is_a_span_linked_to_the_span_that_emitted_it(
    database_url: str,
    master_key: str,
    traced: tuple[TracerProvider, InMemorySpanExporter],
    sending: str,
) -> None:
    provider, exporter = traced
    answers = iter([Reply(status=503), Reply()])
    async with (
        LoopbackReceiver(lambda _r: next(answers)) as receiver,
        HookRuntime(
            database_url,
            workers=1,
            master_key=master_key,
            allow_private_targets=True,
            tracer_provider=provider,
            environ={"HOOKRUNTIME_SENDER_PROCESS": sending},
        ) as runtime,
    ):
        reg = await runtime.registrations.create(
            org="acme", topics=["punch.create"], url=receiver.url, retry_schedule=[0.05]
        )
        host = provider.get_tracer("the host")
        with host.start_as_current_span("punch saved") as emitting:
            event_id = await runtime.emit("punch.create", PUNCH, org="acme")
        await eventually(lambda: len(named(exporter.get_finished_spans(), "deliver")) == 2)
        async with runtime.database.engine.connect() as conn:
            stored = (
                await conn.execute(select(EVENTS.c.traceparent).where(EVENTS.c.id == event_id))
            ).scalar_one()
    emitted = emitting.get_span_context()
    flags = int(emitted.trace_flags)
    assert stored == f"00-{emitted.trace_id:032x}-{emitted.span_id:016x}-{flags:02x}"
    attempts = sorted(
        named(exporter.get_finished_spans(), "deliver punch.create"),
        key=lambda s: s.attributes["hookruntime.attempt"],  # type: ignore[index]
    )
    for number, (span, request) in enumerate(zip(attempts, receiver.received, strict=True), 1):
        assert span.attributes is not None
        assert span.attributes["hookruntime.attempt"] == number
        assert span.attributes["hookruntime.event"] == event_id
        assert span.attributes["hookruntime.registration"] == reg.id
        assert [link.context.span_id for link in span.links] == [emitted.span_id]
        assert span.context.trace_id != emitted.trace_id  # a trace of its own, linked
        assert parent_of(request) == (span.context.trace_id, span.context.span_id)
    assert [s.attributes["hookruntime.status"] for s in attempts] == ["failed", "delivered"]  # type: ignore[index]


async def test_a_registration_changed_in_a_span_gives_its_notice_that_trace_context(
    database_url: str, master_key: str, traced: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    """``webhook.created`` carries the host's span like an emitted event, and the span of
    its delivery links to it."""
    provider, exporter = traced
    async with (
        LoopbackReceiver() as receiver,
        HookRuntime(
            database_url,
            workers=1,
            master_key=master_key,
            allow_private_targets=True,
            tracer_provider=provider,
        ) as runtime,
    ):
        # Told of itself too, outside any span.
        await runtime.registrations.create(org="acme", topics=["webhook.created"], url=receiver.url)
        host = provider.get_tracer("the host")
        with host.start_as_current_span("registration saved") as changing:
            created = await runtime.registrations.create(
                org="acme", topics=["punch.create"], url=receiver.url
            )
        await eventually(lambda: len(named(exporter.get_finished_spans(), "deliver")) == 2)
        async with runtime.database.engine.connect() as conn:
            stored = (
                await conn.execute(
                    select(EVENTS.c.traceparent).where(EVENTS.c.topic == "webhook.created")
                )
            ).scalars()
            kept = set(stored)
    context = changing.get_span_context()
    flags = int(context.trace_flags)
    assert kept == {f"00-{context.trace_id:032x}-{context.span_id:016x}-{flags:02x}", None}
    linked = [
        span
        for span in named(exporter.get_finished_spans(), "deliver webhook.created")
        if [link.context.span_id for link in span.links] == [context.span_id]
    ]
    assert len(linked) == 1
    assert linked[0].attributes is not None
    assert any(created.id in r.body.decode() for r in receiver.received)


async def test_without_a_tracer_provider_nothing_is_traced_or_sent(
    tmp_path: Path, master_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with (
        LoopbackReceiver() as receiver,
        HookRuntime(
            f"sqlite:///{tmp_path / 'n.db'}",
            workers=1,
            master_key=master_key,
            allow_private_targets=True,
        ) as runtime,
    ):
        assert runtime.observer.tracing is None  # installed, but no provider is set
        await runtime.registrations.create(org="acme", topics=["punch.create"], url=receiver.url)
        await runtime.emit("punch.create", PUNCH, org="acme")
        await eventually(lambda: len(receiver.received) == 1)
    assert "traceparent" not in receiver.received[0].headers
    # Not installed at all: the runtime opens and delivers just the same.
    for name in [m for m in sys.modules if m == "opentelemetry" or m.startswith("opentelemetry.")]:
        monkeypatch.setitem(sys.modules, name, None)
    async with (
        LoopbackReceiver() as receiver,
        HookRuntime(
            f"sqlite:///{tmp_path / 'n.db'}",
            workers=1,
            master_key=master_key,
            allow_private_targets=True,
            tracer_provider=TracerProvider(),
        ) as runtime,
    ):
        assert runtime.observer.tracing is None
        await runtime.registrations.create(org="acme", topics=["punch.create"], url=receiver.url)
        await runtime.emit("punch.create", PUNCH, org="acme")
        await eventually(lambda: len(receiver.received) == 1)
    assert "traceparent" not in receiver.received[0].headers
