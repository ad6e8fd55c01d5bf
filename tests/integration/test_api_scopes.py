"""Topic scopes gate every operation on a registration carrying a scoped topic and every
read of its deliveries and events; ``webhook.*`` is emitted by the runtime only; the
test and call routes are rate-limited per key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest
from sqlalchemy import update

from hookruntime import HookRuntime, ValidationError
from hookruntime.api import create_app
from hookruntime.store.models import DELIVERIES

pytestmark = pytest.mark.anyio
ALL = ["webhooks:manage", "events:emit", "hooks:call", "deliveries:read"]
URL = "https://crm.example/hooks"


@pytest.fixture
async def client(runtime: HookRuntime) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(runtime, manage_lifecycle=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as opened:
        yield opened


async def bearer(runtime: HookRuntime, scopes: list[str]) -> dict[str, str]:
    key = await runtime.keys.create(org="acme", scopes=scopes)
    return {"Authorization": f"Bearer {key.key}"}


async def test_a_key_without_the_topic_scope_cannot_see_or_touch_the_registration(
    runtime: HookRuntime, client: httpx.AsyncClient
) -> None:
    reg = await runtime.registrations.create(org="acme", topics=["customers.created"], url=URL)
    plain = await runtime.registrations.create(org="acme", topics=["punch.create"], url=URL)
    event_id = await runtime.emit("customers.created", {"id": "c1"}, org="acme")
    await runtime.emit("punch.create", {"punch": {"id": 1}}, org="acme")
    delivery = (await runtime.deliveries.list(org="acme", event_id=event_id))[0]
    async with runtime.database.engine.begin() as conn:
        await conn.execute(update(DELIVERIES).values(status="dead"))
    lacking = await bearer(runtime, ALL)
    probes = [
        ("GET", f"/v1/registrations/{reg.id}", None),
        ("PATCH", f"/v1/registrations/{reg.id}", {"rev": reg.rev, "priority": 1}),
        (
            "PUT",
            f"/v1/registrations/{reg.id}",
            {"rev": reg.rev, "topics": ["punch.create"], "url": URL},
        ),
        ("DELETE", f"/v1/registrations/{reg.id}", None),
        ("POST", f"/v1/registrations/{reg.id}/rotate-secret", None),
        ("POST", f"/v1/registrations/{reg.id}/test", None),
        ("GET", f"/v1/events/{event_id}", None),
        ("GET", f"/v1/deliveries/{delivery.id}", None),
        ("POST", f"/v1/deliveries/{delivery.id}/retry", None),
    ]
    for method, path, body in probes:
        answer = await client.request(method, path, headers=lacking, json=body)
        assert answer.status_code == 404, (method, path, answer.text)
    listed = (await client.get("/v1/registrations", headers=lacking)).json()["items"]
    assert [r["id"] for r in listed] == [plain.id]
    shown = (await client.get("/v1/deliveries", headers=lacking)).json()["items"]
    assert {d["topic"] for d in shown} == {"punch.create"}
    tested = await client.post("/v1/test", headers=lacking, json={"topic": "customers.created"})
    assert tested.status_code == 422 and "needs scope(s) customers" in tested.json()["detail"]
    bulk = await client.post("/v1/deliveries/retry", headers=lacking, json={"status": "dead"})
    assert bulk.json() == {"retried": 1}  # the punch.create one only
    assert (await runtime.deliveries.get(delivery.id, org="acme")).status == "dead"
    assert (await runtime.registrations.get(reg.id, org="acme")).rev == reg.rev

    scoped = await bearer(runtime, [*ALL, "customers"])
    assert (await client.get(f"/v1/registrations/{reg.id}", headers=scoped)).status_code == 200
    assert (await client.get(f"/v1/events/{event_id}", headers=scoped)).status_code == 200
    listed = (await client.get("/v1/registrations", headers=scoped)).json()["items"]
    assert {r["id"] for r in listed} == {reg.id, plain.id}
    gone = await client.delete(f"/v1/registrations/{reg.id}", headers=scoped)
    assert gone.status_code == 204


async def test_a_registration_carrying_a_scoped_topic_hides_all_its_deliveries(
    runtime: HookRuntime, client: httpx.AsyncClient
) -> None:
    mixed = await runtime.registrations.create(
        org="acme", topics=["punch.create", "customers.created"], url=URL
    )
    plain = await runtime.registrations.create(org="acme", topics=["punch.create"], url=URL)
    event_id = await runtime.emit("punch.create", {"punch": {"id": 1}}, org="acme")
    hidden = (await runtime.deliveries.list(org="acme", registration_id=mixed.id))[0]
    lacking = await bearer(runtime, ALL)
    shown = (await client.get("/v1/deliveries", headers=lacking)).json()["items"]
    assert [d["registration_id"] for d in shown] == [plain.id]
    event = (await client.get(f"/v1/events/{event_id}", headers=lacking)).json()
    assert [d["registration_id"] for d in event["deliveries"]] == [plain.id]
    for method in ("GET", "POST"):
        path = f"/v1/deliveries/{hidden.id}" + ("/retry" if method == "POST" else "")
        answer = await client.request(method, path, headers=lacking)
        assert answer.status_code == 404 and "no delivery" in answer.json()["detail"]
    scoped = await bearer(runtime, [*ALL, "customers"])
    shown = (await client.get("/v1/deliveries", headers=scoped)).json()["items"]
    assert {d["registration_id"] for d in shown} == {mixed.id, plain.id}


async def test_the_runtimes_own_topics_cannot_be_emitted_from_outside(
    runtime: HookRuntime, client: httpx.AsyncClient
) -> None:
    headers = await bearer(runtime, ALL)
    answer = await client.post(
        "/v1/events", headers=headers, json={"topic": "webhook.created", "data": {}}
    )
    assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "topic"
    with pytest.raises(ValidationError, match="emitted by hookruntime"):
        await runtime.emit("webhook.disabled", {}, org="acme")
    with pytest.raises(ValidationError, match="emitted by hookruntime"):
        await runtime.emit_many("webhook.updated", [{}], org="acme")
    # The runtime's own announcements still go out.
    await runtime.registrations.create(org="acme", topics=["webhook.created"], url=URL)
    assert [d.topic for d in await runtime.deliveries.list(org="acme")] == ["webhook.created"]


async def test_tests_and_calls_are_rate_limited_per_key(
    runtime: HookRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    limits = {"tests_rate": 1.0, "tests_burst": 2.0, "calls_rate": 1.0, "calls_burst": 2.0}
    monkeypatch.setattr(runtime, "settings", replace(runtime.settings, **limits))
    transport = httpx.ASGITransport(app=create_app(runtime, manage_lifecycle=False))
    client = httpx.AsyncClient(transport=transport, base_url="http://api.test")
    headers = await bearer(runtime, ALL)
    test = {"topic": "punch.create"}
    call = {"topic": "user_logged_in", "data": {"id": "u1"}}
    tests = [(await client.post("/v1/test", headers=headers, json=test)) for _ in range(3)]
    calls = [(await client.post("/v1/calls", headers=headers, json=call)) for _ in range(3)]
    assert [a.status_code for a in tests] == [202, 202, 429]
    assert [a.status_code for a in calls] == [200, 200, 429]
    assert int(calls[-1].headers["Retry-After"]) >= 1
    other = await bearer(runtime, ALL)
    assert (await client.post("/v1/calls", headers=other, json=call)).status_code == 200
