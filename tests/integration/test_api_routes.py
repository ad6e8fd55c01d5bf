"""The HTTP API in-process: every route's happy path and errors, auth and scopes, org
isolation, idempotency, and seed 001's registration and test flow against a receiver
that verifies the JWS exactly as seed 001's does."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import anyio
import httpx
import jose.jws
import pytest
from aiohttp import web

from hookruntime import HookRuntime
from hookruntime.api import create_app
from hookruntime.testing import LoopbackReceiver, Reply, eventually

pytestmark = pytest.mark.anyio
ALL = ["webhooks:manage", "events:emit", "hooks:call", "deliveries:read"]


@pytest.fixture
async def api(tmp_path, master_key) -> AsyncIterator[tuple[HookRuntime, httpx.AsyncClient]]:
    runtime = HookRuntime(
        f"sqlite:///{tmp_path / 'api.db'}", master_key=master_key, allow_private_targets=True
    )
    async with runtime:
        transport = httpx.ASGITransport(app=create_app(runtime, manage_lifecycle=False))
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
            yield runtime, client


async def bearer(runtime: HookRuntime, org: str = "acme", scopes=ALL) -> dict[str, str]:
    key = await runtime.keys.create(org=org, scopes=scopes)
    return {"Authorization": f"Bearer {key.key}"}


async def test_seed_001_registration_and_test_flow(api) -> None:
    runtime, client = api
    received: list[dict[str, object]] = []

    async def handle_profile_updated(request: web.Request) -> web.Response:
        data = await request.text()
        payload_str = jose.jws.verify(data, "signature_secret", algorithms=["HS256"])
        received.append(json.loads(payload_str.decode("utf-8")))
        return web.json_response({"ok": True})

    app = web.Application()
    app.add_routes([web.post("/profile_updated", handle_profile_updated)])
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        headers = await bearer(runtime)
        payload = {
            "topic": "profile_updated",
            "url": f"http://127.0.0.1:{port}/profile_updated",
            "secret": "signature_secret",
        }
        created = await client.post("/v1/registrations", json=payload, headers=headers)
        assert created.status_code == 201
        assert {"id", "rev"} <= set(created.json())
        typo = await client.post("/v1/test", json={"topic": "profile_uploaded"}, headers=headers)
        assert typo.status_code == 422
        assert "profile_updated" in typo.json()["known_topics"]
        assert "did you mean 'profile_updated'" in typo.json()["detail"]
        sent = await client.post("/v1/test", json={"topic": "profile_updated"}, headers=headers)
        assert sent.status_code == 202 and sent.json()["deliveries"] == 1
        await eventually(lambda: received)
        assert received[0]["email"] == "john@doe.com"
        assert received[0]["webhook_request_id"] == sent.json()["id"]
    finally:
        await runner.cleanup()


async def test_registration_lifecycle_with_rev(api) -> None:
    runtime, client = api
    headers = await bearer(runtime)
    made = (
        await client.post(
            "/v1/registrations",
            headers=headers,
            json={
                "events": ["liveness.completed"],
                "url": "https://crm.example/hook",
                "secret": "your-secret-key-min-32-chars-ok!",
                "is_active": True,
            },
        )
    ).json()
    assert made["profile"] == "envelope" and made["secret"]
    read = await client.get(f"/v1/registrations/{made['id']}", headers=headers)
    assert read.status_code == 200 and "secret" not in read.json()
    patched = await client.patch(
        f"/v1/registrations/{made['id']}", headers=headers, json={"rev": made["rev"], "priority": 5}
    )
    assert patched.status_code == 200 and patched.json()["priority"] == 5
    stale = await client.patch(
        f"/v1/registrations/{made['id']}", headers=headers, json={"rev": made["rev"], "priority": 6}
    )
    assert stale.status_code == 409
    assert stale.headers["content-type"] == "application/problem+json"
    no_rev = await client.patch(
        f"/v1/registrations/{made['id']}", headers=headers, json={"priority": 6}
    )
    assert no_rev.status_code == 428
    put = await client.put(
        f"/v1/registrations/{made['id']}",
        headers={**headers, "If-Match": f'"{patched.json()["rev"]}"'},
        json={"topics": ["liveness.failed"], "url": "https://crm.example/2"},
    )
    assert put.status_code == 200 and put.json()["topics"] == ["liveness.failed"]
    rotated = await client.post(
        f"/v1/registrations/{made['id']}/rotate-secret", headers=headers, json={}
    )
    assert rotated.status_code == 200 and rotated.json()["secret"] != made["secret"]
    listed = await client.get("/v1/registrations?limit=10", headers=headers)
    assert [r["id"] for r in listed.json()["items"]] == [made["id"]]
    gone = await client.delete(f"/v1/registrations/{made['id']}", headers=headers)
    assert gone.status_code == 204
    assert (await client.get(f"/v1/registrations/{made['id']}", headers=headers)).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"topic": "profile_updated"}, "url"),
        ({"topic": "nope", "url": "https://x.example"}, "topics.0"),
        ({"topic": "profile_updated", "url": "ftp://x"}, "url"),
        ({"topic": "profile_updated", "url": "https://x.example", "secret": "short"}, "secret"),
        ({"topic": "profile_updated", "url": "https://x.example", "secret": 5}, "secret"),
        ({"topic": "profile_updated", "url": "https://x.example", "colour": "red"}, "colour"),
        ({"topic": "profile_updated", "url": "http://10.0.0.1/"}, "url"),
    ],
)
async def test_invalid_registrations_get_field_errors(
    tmp_path, master_key, body, field: str
) -> None:
    runtime = HookRuntime(f"sqlite:///{tmp_path / 'v.db'}", master_key=master_key, workers=0)
    async with runtime:
        transport = httpx.ASGITransport(app=create_app(runtime, manage_lifecycle=False))
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
            answer = await client.post(
                "/v1/registrations", json=body, headers=await bearer(runtime)
            )
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert field in [e["field"] for e in answer.json()["errors"]]


async def test_auth_scopes_and_bodies(api) -> None:
    runtime, client = api
    reader = await bearer(runtime, scopes=["deliveries:read"])
    assert (await client.get("/v1/registrations")).status_code == 401
    assert (
        await client.get("/v1/registrations", headers={"Authorization": "Bearer hrk_x"})
    ).status_code == 401
    assert (await client.get("/v1/registrations", headers=reader)).status_code == 403
    manager = await bearer(runtime)
    assert (
        await client.post("/v1/registrations", headers=manager, content=b"{not json")
    ).status_code == 400
    assert (
        await client.post(
            "/v1/registrations",
            headers={**manager, "Content-Type": "text/plain"},
            content=b'{"a":1}',
        )
    ).status_code == 415
    # A body that may be left out is either absent or JSON: blank is not absent.
    assert (
        await client.post("/v1/deliveries/retry", headers=manager, content=b"")
    ).status_code == 202
    blank = await client.post("/v1/deliveries/retry", headers=manager, content=b"\r\n\r\n")
    assert blank.status_code == 400 and blank.json()["title"] == "Malformed JSON"
    big = b'{"x":"' + b"a" * (1024 * 1024) + b'"}'
    assert (await client.post("/v1/registrations", headers=manager, content=big)).status_code == 413
    scoped = await client.post(
        "/v1/registrations",
        headers=manager,
        json={"topic": "customers.created", "url": "https://x.example"},
    )
    assert scoped.status_code == 422 and "needs scope(s) customers" in scoped.json()["detail"]


async def test_events_calls_and_deliveries(api) -> None:
    runtime, client = api
    headers = await bearer(runtime)
    async with LoopbackReceiver(lambda _r: Reply.json({"patch": {"firstName": "Jo"}})) as rx:
        for topic in ("punch.create", "user_logged_in"):
            await client.post(
                "/v1/registrations",
                headers=headers,
                json={"topic": topic, "url": rx.url, "secret": "s" * 20},
            )
        emitted = await client.post(
            "/v1/events",
            headers=headers,
            json={"topic": "punch.create", "data": {"punch": {"id": 1}}},
        )
        assert emitted.status_code == 202 and emitted.json()["deliveries"] == 1
        event_id = emitted.json()["id"]
        called = await client.post(
            "/v1/calls",
            headers=headers,
            json={"topic": "user_logged_in", "data": {"id": "u1"}, "deadline": 1.0},
        )
        assert called.status_code == 200
        assert called.json()["allowed"] and called.json()["patch"] == {"firstName": "Jo"}
        nested = await client.post(
            "/v1/calls",
            headers={**headers, "X-Hook-Depth": "1"},
            json={"topic": "user_logged_in", "data": {"id": "u1"}},
        )
        assert nested.status_code == 409
        await eventually(lambda: runtime.deliveries.list(org="acme", status="delivered"))
    event = (await client.get(f"/v1/events/{event_id}", headers=headers)).json()
    assert event["data"] == {"punch": {"id": 1}} and event["deliveries"][0]["status"] == "delivered"
    page = (await client.get("/v1/deliveries?status=delivered", headers=headers)).json()
    delivery_id = page["items"][0]["id"]
    shown = (await client.get(f"/v1/deliveries/{delivery_id}", headers=headers)).json()
    assert shown["attempt_log"][0]["status_code"] == 200
    again = await client.post(f"/v1/deliveries/{delivery_id}/retry", headers=headers)
    assert again.status_code == 202
    bulk = await client.post("/v1/deliveries/retry", headers=headers, json={"status": "dead"})
    assert bulk.status_code == 202 and bulk.json() == {"retried": 0}
    bad = await client.get("/v1/deliveries?status=lost", headers=headers)
    assert bad.status_code == 422


async def test_idempotency_under_50_concurrent_requests(api) -> None:
    runtime, client = api
    headers = {**await bearer(runtime), "Idempotency-Key": "order-7"}
    await runtime.registrations.create(
        org="acme", topics=["punch.create"], url="https://hr.example/in"
    )
    body = {"topic": "punch.create", "data": {"punch": {"id": 7}}}
    answers: list[httpx.Response] = []

    async def send() -> None:
        answers.append(await client.post("/v1/events", headers=headers, json=body))

    async with anyio.create_task_group() as group:
        for _ in range(50):
            group.start_soon(send)
    assert {a.status_code for a in answers} == {202}
    assert len({a.json()["id"] for a in answers}) == 1
    assert {a.json()["deliveries"] for a in answers} == {1}  # a replay answers the same
    other = await client.post(
        "/v1/events", headers=headers, json={"topic": "punch.create", "data": {"punch": {"id": 8}}}
    )
    assert other.status_code == 422 and other.json()["title"] == "Idempotency-Key reused"
    assert len(await runtime.deliveries.list(org="acme")) == 1


async def test_another_orgs_objects_are_not_found(api) -> None:
    runtime, client = api
    mine = await bearer(runtime, "acme")
    theirs = await bearer(runtime, "globex")
    reg = (
        await client.post(
            "/v1/registrations",
            headers=mine,
            json={"topic": "punch.create", "url": "https://hr.example/in"},
        )
    ).json()
    event = (
        await client.post(
            "/v1/events", headers=mine, json={"topic": "punch.create", "data": {"punch": {"id": 1}}}
        )
    ).json()
    delivery = (await runtime.deliveries.list(org="acme"))[0]
    probes = [
        ("GET", f"/v1/registrations/{reg['id']}", None),
        ("PATCH", f"/v1/registrations/{reg['id']}", {"rev": reg["rev"], "priority": 1}),
        (
            "PUT",
            f"/v1/registrations/{reg['id']}",
            {"rev": reg["rev"], "topics": ["punch.create"], "url": "https://evil.example"},
        ),
        ("DELETE", f"/v1/registrations/{reg['id']}", None),
        ("POST", f"/v1/registrations/{reg['id']}/rotate-secret", None),
        ("POST", f"/v1/registrations/{reg['id']}/test", None),
        ("GET", f"/v1/events/{event['id']}", None),
        ("GET", f"/v1/deliveries/{delivery.id}", None),
        ("POST", f"/v1/deliveries/{delivery.id}/retry", None),
    ]
    for method, path, body in probes:
        answer = await client.request(method, path, headers=theirs, json=body)
        assert answer.status_code == 404, (method, path, answer.text)
        assert reg["id"] not in answer.text or "no " in answer.json()["detail"]
    assert (await client.get("/v1/registrations", headers=theirs)).json()["items"] == []
    assert (await client.get("/v1/deliveries", headers=theirs)).json()["items"] == []
    assert (await runtime.registrations.get(reg["id"], org="acme")).rev == reg["rev"]


async def test_changes_are_announced_to_the_orgs_subscribers(api) -> None:
    runtime, client = api
    headers = await bearer(runtime)
    async with LoopbackReceiver() as ops:
        await client.post(
            "/v1/registrations",
            headers=headers,
            json={"events": ["webhook.created", "webhook.deleted"], "url": ops.url},
        )
        made = (
            await client.post(
                "/v1/registrations",
                headers=headers,
                json={"topic": "punch.create", "url": "https://hr.example/in"},
            )
        ).json()
        await client.delete(f"/v1/registrations/{made['id']}", headers=headers)
        await eventually(lambda: len(ops.received) == 3)  # its own creation, too
    about = [r.json() for r in ops.received if r.json()["data"]["webhook_id"] == made["id"]]
    assert sorted(a["type"] for a in about) == ["webhook.created", "webhook.deleted"]


async def test_openapi_describes_every_route(api) -> None:
    runtime, client = api
    document = (await client.get("/openapi.json")).json()
    app = create_app(runtime, manage_lifecycle=False)
    served = {
        (route.path, method.lower())
        for route in app.routes  # the /ui mount is HTML, not API: it has no methods
        for method in (getattr(route, "methods", None) or ())
        if method != "HEAD"
    }  # type: ignore[attr-defined]
    described = {(path, method) for path, ops in document["paths"].items() for method in ops}
    assert served == described


async def test_event_submission_is_rate_limited_per_key(tmp_path, master_key) -> None:
    runtime = HookRuntime(
        f"sqlite:///{tmp_path / 'limited.db'}",
        master_key=master_key,
        workers=0,
        environ={"HOOKRUNTIME_EVENTS_RATE": "1", "HOOKRUNTIME_EVENTS_BURST": "3"},
    )
    async with runtime:
        transport = httpx.ASGITransport(app=create_app(runtime, manage_lifecycle=False))
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
            headers = await bearer(runtime)
            body = {"topic": "punch.create", "data": {"punch": {"id": 1}}}
            codes = [
                (await client.post("/v1/events", headers=headers, json=body)).status_code
                for _ in range(5)
            ]
            assert codes == [202, 202, 202, 429, 429]
            limited = await client.post("/v1/events", headers=headers, json=body)
            assert int(limited.headers["Retry-After"]) >= 1
            other = await client.post("/v1/events", headers=await bearer(runtime), json=body)
            assert other.status_code == 202  # the bucket is per key


async def test_registrations_per_org_are_limited(api, monkeypatch) -> None:
    from hookruntime import registrations

    runtime, client = api
    monkeypatch.setattr(registrations, "MAX_PER_ORG", 2)
    headers = await bearer(runtime)
    body = {"topic": "punch.create", "url": "https://hr.example/in"}
    codes = [
        (await client.post("/v1/registrations", headers=headers, json=body)).status_code
        for _ in range(3)
    ]
    assert codes == [201, 201, 422]


async def test_the_key_never_shows_after_creation(api, caplog) -> None:
    import logging

    runtime, client = api
    caplog.set_level(logging.DEBUG)
    created = await runtime.keys.create(org="acme", scopes=ALL)
    headers = {"Authorization": f"Bearer {created.key}"}
    pages = [
        await client.get(path, headers=headers)
        for path in ("/v1/registrations", "/v1/deliveries", "/v1/topics")
    ]
    assert all(page.status_code == 200 for page in pages)
    assert all(created.key not in page.text for page in pages)
    assert created.key not in caplog.text
    assert created.key not in repr(await runtime.keys.list(org="acme"))


SCOPED = [
    ("POST", "/v1/registrations", "webhooks:manage"),
    ("GET", "/v1/registrations", "webhooks:manage"),
    ("GET", "/v1/registrations/reg_x", "webhooks:manage"),
    ("PATCH", "/v1/registrations/reg_x", "webhooks:manage"),
    ("PUT", "/v1/registrations/reg_x", "webhooks:manage"),
    ("DELETE", "/v1/registrations/reg_x", "webhooks:manage"),
    ("POST", "/v1/registrations/reg_x/rotate-secret", "webhooks:manage"),
    ("POST", "/v1/registrations/reg_x/test", "webhooks:manage"),
    ("POST", "/v1/test", "webhooks:manage"),
    ("POST", "/v1/events", "events:emit"),
    ("POST", "/v1/calls", "hooks:call"),
    ("GET", "/v1/events/evt_x", "deliveries:read"),
    ("GET", "/v1/deliveries", "deliveries:read"),
    ("GET", "/v1/deliveries/dlv_x", "deliveries:read"),
    ("POST", "/v1/deliveries/dlv_x/retry", "webhooks:manage"),
    ("POST", "/v1/deliveries/retry", "webhooks:manage"),
]


async def test_every_route_checks_its_scope(api) -> None:
    runtime, client = api
    for method, path, scope in SCOPED:
        others = [s for s in ALL if s != scope]
        lacking = await bearer(runtime, scopes=others)
        answer = await client.request(method, path, headers=lacking, json={})
        assert answer.status_code == 403, (method, path, answer.text)
        assert scope in answer.json()["detail"]
        assert (await client.request(method, path, json={})).status_code == 401
