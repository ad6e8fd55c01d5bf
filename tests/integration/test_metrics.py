"""Prometheus metrics from real runs: a runtime, loopback receivers, a real database,
scraped through the app's ``GET /metrics`` (or a worker's ``--metrics-port``) and read
with prometheus_client's own parser."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from hookruntime import HookRuntime
from hookruntime.api import create_app
from hookruntime.blocking import BreakerPolicy
from hookruntime.observe import metrics as metrics_module
from hookruntime.testing import LoopbackReceiver, Received, Reply, eventually

pytestmark = pytest.mark.anyio
PUNCH = {"punch": {"id": 2, "punch_type": "IN"}}
CLAIMS = {"id": "u1", "email": "u1@example.com"}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


@asynccontextmanager
async def scraping(runtime: HookRuntime) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(runtime, manage_lifecycle=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        yield client


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


async def test_deliveries_are_counted_by_topic_and_outcome_with_attempt_latency(
    tmp_path: Path, master_key: str
) -> None:
    async with (
        LoopbackReceiver() as good,
        LoopbackReceiver(lambda _r: Reply(status=500)) as bad,
        HookRuntime(
            f"sqlite:///{tmp_path / 'm.db'}",
            workers=1,
            master_key=master_key,
            allow_private_targets=True,
        ) as runtime,
        scraping(runtime) as client,
    ):
        await runtime.registrations.create(org="acme", topics=["punch.create"], url=good.url)
        await runtime.registrations.create(
            org="acme", topics=["punch.create"], url=bad.url, retry_schedule=[0.05]
        )
        for _ in range(3):
            await runtime.emit("punch.create", PUNCH, org="acme")

        async def settled() -> Samples | None:
            samples = await scrape(client)
            dead = value(
                samples, "hookruntime_deliveries_total", topic="punch.create", outcome="dead"
            )
            return samples if dead == 3 else None

        samples = await eventually(settled)
        total = "hookruntime_deliveries_total"
        assert value(samples, total, topic="punch.create", outcome="delivered") == 3
        assert value(samples, total, topic="punch.create", outcome="failed") == 3
        assert value(samples, "hookruntime_delivery_seconds_count", topic="punch.create") == 9
        assert value(samples, "hookruntime_delivery_seconds_sum", topic="punch.create") > 0
        assert len(good.received) == 3 and len(bad.received) == 6

        async def drained() -> Samples | None:
            # Read from the database at most every couple of seconds, not on every scrape.
            samples = await scrape(client)
            return samples if value(samples, "hookruntime_queue_depth") == 0 else None

        samples = await eventually(drained)
        assert value(samples, "hookruntime_oldest_due_seconds") == 0


async def test_queue_depth_and_oldest_due_age_are_read_from_the_database_on_scrape(
    database_url: str, master_key: str
) -> None:
    async with (
        HookRuntime(database_url, workers=0, master_key=master_key) as runtime,
        scraping(runtime) as client,
    ):
        await runtime.registrations.create(
            org="acme", topics=["punch.create"], url="https://a.example/h"
        )
        await runtime.emit_many("punch.create", [PUNCH] * 5, org="acme")
        await anyio.sleep(0.3)
        samples = await scrape(client)
        assert value(samples, "hookruntime_queue_depth") == 5
        assert 0.3 <= value(samples, "hookruntime_oldest_due_seconds") < 30  # type: ignore[operator]


async def test_blocking_calls_are_counted_by_decision_and_receivers_by_status(
    tmp_path: Path, master_key: str
) -> None:
    async with (
        LoopbackReceiver(lambda _r: Reply.json({"decision": "allow"})) as allows,
        LoopbackReceiver(lambda _r: Reply.json({"decision": "deny", "reason": "no"})) as denies,
        HookRuntime(
            f"sqlite:///{tmp_path / 'c.db'}",
            workers=0,
            master_key=master_key,
            allow_private_targets=True,
        ) as runtime,
        scraping(runtime) as client,
    ):
        await runtime.registrations.create(
            org="acme", topics=["user_logged_in"], url=allows.url, priority=0
        )
        await runtime.call("user_logged_in", CLAIMS, org="acme")
        await runtime.registrations.create(
            org="acme", topics=["user_logged_in"], url=denies.url, priority=1
        )
        await runtime.call("user_logged_in", CLAIMS, org="acme")
        samples = await scrape(client)
        topic = "user_logged_in"
        assert value(samples, "hookruntime_calls_total", topic=topic, decision="allow") == 1
        assert value(samples, "hookruntime_calls_total", topic=topic, decision="deny") == 1
        assert value(samples, "hookruntime_call_seconds_count", topic=topic) == 2
        outcomes = "hookruntime_receiver_outcomes_total"
        assert value(samples, outcomes, topic=topic, status="ok") == 2
        assert value(samples, outcomes, topic=topic, status="deny") == 1


async def test_breaker_state_and_disabled_registrations_are_exposed(
    tmp_path: Path, master_key: str
) -> None:
    async with (
        LoopbackReceiver(lambda _r: Reply(status=500)) as failing,
        LoopbackReceiver(lambda _r: Reply(status=410)) as gone,
        HookRuntime(
            f"sqlite:///{tmp_path / 'b.db'}",
            workers=1,
            master_key=master_key,
            allow_private_targets=True,
            breaker=BreakerPolicy(min_calls=2, cooldown=60),
        ) as runtime,
        scraping(runtime) as client,
    ):
        blocking = await runtime.registrations.create(
            org="acme", topics=["user_logged_in"], url=failing.url
        )
        for _ in range(3):
            await runtime.call("user_logged_in", CLAIMS, org="acme")
        await runtime.registrations.create(org="acme", topics=["punch.create"], url=gone.url)
        await runtime.emit("punch.create", PUNCH, org="acme")

        async def disabled() -> Samples | None:
            samples = await scrape(client)
            return samples if value(samples, "hookruntime_disabled_registrations") == 1 else None

        samples = await eventually(disabled)
        assert value(samples, "hookruntime_registrations_disabled_total") == 1
        assert value(samples, "hookruntime_breakers", state="open") == 1
        assert value(samples, "hookruntime_breaker_open", registration=blocking.id) == 1
        outcomes = "hookruntime_receiver_outcomes_total"
        assert value(samples, outcomes, topic="user_logged_in", status="circuit_open") == 1


async def test_in_flight_is_per_registration_and_rolls_up_beyond_the_cap(
    tmp_path: Path, master_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(metrics_module, "REGISTRATION_CAP", 1)
    release = anyio.Event()

    async def slow(_r: Received) -> Reply:
        await release.wait()
        return Reply()

    async with (
        LoopbackReceiver(slow) as receiver,
        HookRuntime(
            f"sqlite:///{tmp_path / 'f.db'}",
            workers=1,
            master_key=master_key,
            allow_private_targets=True,
        ) as runtime,
        scraping(runtime) as client,
    ):
        busy = await runtime.registrations.create(
            org="acme", topics=["punch.create"], url=receiver.url
        )
        await runtime.emit_many("punch.create", [PUNCH] * 3, org="acme")
        await runtime.registrations.create(org="acme", topics=["profile_updated"], url=receiver.url)
        await runtime.emit("profile_updated", {"id": "u1"}, org="acme")
        await eventually(lambda: len(receiver.received) == 4)
        samples = await scrape(client)
        assert value(samples, "hookruntime_in_flight", registration=busy.id) == 3
        assert value(samples, "hookruntime_in_flight", registration="other") == 1
        release.set()
        await eventually(lambda: sum(w.delivered for w in runtime.workers) == 4)
        samples = await scrape(client)
        assert not [k for k in samples if k[0] == "hookruntime_in_flight"]


async def test_each_runtime_counts_in_its_own_registry_and_metrics_can_be_off(
    tmp_path: Path, master_key: str
) -> None:
    async with (
        LoopbackReceiver(lambda _r: Reply.json({"decision": "allow"})) as receiver,
        HookRuntime(
            f"sqlite:///{tmp_path / 'one.db'}",
            workers=0,
            master_key=master_key,
            allow_private_targets=True,
        ) as one,
        HookRuntime(f"sqlite:///{tmp_path / 'two.db'}", workers=0, master_key=master_key) as two,
        HookRuntime(
            f"sqlite:///{tmp_path / 'off.db'}", workers=0, master_key=master_key, metrics=False
        ) as off,
        scraping(one) as first,
        scraping(two) as second,
        scraping(off) as third,
    ):
        await one.registrations.create(org="acme", topics=["user_logged_in"], url=receiver.url)
        await one.call("user_logged_in", CLAIMS, org="acme")
        calls = "hookruntime_calls_total"
        assert value(await scrape(first), calls, topic="user_logged_in", decision="allow") == 1
        assert value(await scrape(second), calls, topic="user_logged_in", decision="allow") is None
        assert off.metrics is None
        refused = await third.get("/metrics")
        assert refused.status_code == 404
        assert refused.headers["content-type"] == "application/problem+json"


async def test_the_grafana_dashboard_queries_only_metrics_a_runtime_exposes(
    sqlite_runtime: HookRuntime,
) -> None:
    dashboard = Path(__file__).parents[2] / "examples" / "grafana-dashboard.json"
    queried = set(re.findall(r"hookruntime_[a-z_]+", dashboard.read_text()))
    async with scraping(sqlite_runtime) as client:
        text = (await client.get("/metrics")).text
    exposed = {family.name for family in text_string_to_metric_families(text)}
    suffixes = re.compile(r"_(total|bucket|sum|count)$")
    assert {suffixes.sub("", name) for name in queried} <= exposed
    assert len(queried) >= 10


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_worker_process_serves_its_own_metrics_on_metrics_port(
    tmp_path: Path, master_key: str
) -> None:
    database_url = f"sqlite:///{tmp_path / 'w.db'}"
    async with LoopbackReceiver() as receiver:
        async with HookRuntime(
            database_url, workers=0, master_key=master_key, allow_private_targets=True
        ) as runtime:
            await runtime.registrations.create(
                org="acme", topics=["punch.create"], url=receiver.url
            )
            await runtime.emit_many("punch.create", [PUNCH] * 4, org="acme")
        port = _free_port()
        env = {**os.environ, "HOOKRUNTIME_MASTER_KEY": master_key}
        worker = subprocess.Popen(  # noqa: ASYNC220 - started once, reaped at the end
            [sys.executable, "-m", "hookruntime.cli", "worker", "--database-url", database_url,
             "--allow-private-targets", "--metrics-port", str(port), "--log-level", "warning"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:

                async def delivered() -> bool:
                    try:
                        response = await client.get("/metrics")
                    except httpx.TransportError:
                        return False
                    samples = parse(response.text)
                    total = "hookruntime_deliveries_total"
                    return value(samples, total, topic="punch.create", outcome="delivered") == 4

                await eventually(delivered, timeout=20)
                assert (await client.get("/elsewhere")).status_code == 404
        finally:
            worker.terminate()
            _, stderr = worker.communicate(timeout=30)
        assert worker.returncode == 0, stderr.decode()
        assert len(receiver.received) == 4
