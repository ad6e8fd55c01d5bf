"""The API's limits and description come from one place: rate limits from Settings,
per app; the OpenAPI document from the routes the app serves, its scopes the ones the
routes enforce and its bounds the ones the validation refuses beyond."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from starlette.responses import JSONResponse, Response

from hookruntime import ConfigurationError, HookRuntime, Settings, __version__
from hookruntime.api import create_app
from hookruntime.api.app import ROUTES, routes
from hookruntime.api.openapi import Endpoint, openapi, routes_of

pytestmark = pytest.mark.anyio
ALL = ["webhooks:manage", "events:emit", "hooks:call", "deliveries:read"]


def client_of(runtime: HookRuntime) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(runtime, manage_lifecycle=False))
    return httpx.AsyncClient(transport=transport, base_url="http://api.test")


@pytest.fixture
async def client(sqlite_runtime: HookRuntime) -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(sqlite_runtime) as opened:
        yield opened


async def bearer(runtime: HookRuntime, scopes: list[str] = ALL) -> dict[str, str]:
    key = await runtime.keys.create(org="acme", scopes=scopes)
    return {"Authorization": f"Bearer {key.key}"}


def test_rate_limits_are_settings_with_todays_defaults() -> None:
    settings = Settings.from_env({})
    assert (settings.events_rate, settings.events_burst) == (200.0, 400.0)
    assert (settings.calls_rate, settings.calls_burst) == (200.0, 400.0)
    assert (settings.tests_rate, settings.tests_burst) == (5.0, 20.0)
    read = Settings.from_env({"HOOKRUNTIME_TESTS_RATE": "0.5", "HOOKRUNTIME_CALLS_BURST": "9"})
    assert (read.tests_rate, read.calls_burst) == (0.5, 9.0)
    for name, value in [("EVENTS_RATE", "0"), ("CALLS_RATE", "nan"), ("TESTS_BURST", "0.5")]:
        with pytest.raises(ConfigurationError, match=name.lower().split("_")[0]):
            Settings.from_env({f"HOOKRUNTIME_{name}": value})


async def test_two_apps_in_one_process_count_apart(sqlite_runtime: HookRuntime) -> None:
    runtime = sqlite_runtime
    runtime.settings = replace(runtime.settings, events_rate=0.01, events_burst=2.0)
    headers = await bearer(runtime)
    body = {"topic": "punch.create", "data": {"punch": {"id": 1}}}
    async with client_of(runtime) as first, client_of(runtime) as second:
        codes = [(await first.post("/v1/events", headers=headers, json=body)).status_code]
        codes += [(await first.post("/v1/events", headers=headers, json=body)).status_code]
        codes += [(await first.post("/v1/events", headers=headers, json=body)).status_code]
        assert codes == [202, 202, 429]
        # The same key, through another app: a bucket of its own, full.
        assert (await second.post("/v1/events", headers=headers, json=body)).status_code == 202


async def test_the_served_document_is_built_from_the_apps_routes(
    sqlite_runtime: HookRuntime, client: httpx.AsyncClient
) -> None:
    served = (await client.get("/openapi.json")).json()
    assert served == openapi(__version__, create_app(sqlite_runtime).routes)
    assert served == openapi(__version__, routes())
    assert served["paths"]["/docs"]["get"]["summary"].startswith("This document")

    async def extra(_request: Any) -> Response:
        return JSONResponse({})

    added = Endpoint("/v1/extra/{name}", "PUT", extra, "An extra operation", "hooks:call")
    document = openapi(__version__, routes_of([*ROUTES, added]))
    operation = document["paths"]["/v1/extra/{name}"]["put"]
    assert operation["summary"] == "An extra operation"
    assert operation["parameters"][0]["name"] == "name"
    assert operation["description"] == "Needs the scope `hooks:call`."


async def test_every_documented_scope_is_the_one_its_route_enforces(
    sqlite_runtime: HookRuntime, client: httpx.AsyncClient
) -> None:
    scoped = [e for e in ROUTES if e.scope]
    assert len(scoped) >= 15
    for endpoint in scoped:
        lacking = await bearer(sqlite_runtime, [s for s in ALL if s != endpoint.scope])
        path = endpoint.path.replace("{id}", "x")
        answer = await client.request(endpoint.method, path, headers=lacking, json={})
        assert answer.status_code == 403, (endpoint.method, endpoint.path, answer.text)
        assert repr(endpoint.scope) in answer.json()["detail"]


def _property(document: dict[str, Any], path: str, method: str, name: str) -> dict[str, Any]:
    body = document["paths"][path][method]["requestBody"]["content"]["application/json"]
    schema: dict[str, Any] = body["schema"]["properties"][name]
    return schema


async def test_the_documents_bounds_are_the_ones_enforced(
    sqlite_runtime: HookRuntime, client: httpx.AsyncClient
) -> None:
    document = (await client.get("/openapi.json")).json()
    headers = await bearer(sqlite_runtime)
    field = lambda name: _property(document, "/v1/registrations", "post", name)  # noqa: E731
    base = {"topic": "punch.create", "url": "https://hr.example/in"}
    at_bound = {
        "priority": field("priority")["maximum"],
        "max_attempts": field("max_attempts")["maximum"],
        "timeout": field("timeout")["maximum"],
        "description": "d" * field("description")["maxLength"],
        "retry_schedule": [field("retry_schedule")["items"]["maximum"]]
        * field("retry_schedule")["maxItems"],
        "headers": {f"X-H{i}": "v" * field("headers")["additionalProperties"]["maxLength"]
                    for i in range(field("headers")["maxProperties"])},
        "topics": ["punch.create"] * field("topics")["maxItems"],
    }  # fmt: skip
    beyond = {
        "priority": at_bound["priority"] + 1,
        "max_attempts": at_bound["max_attempts"] + 1,
        "timeout": at_bound["timeout"] + 0.5,
        "description": at_bound["description"] + "d",
        "retry_schedule": [*at_bound["retry_schedule"], 1],
        "headers": {**at_bound["headers"], "X-Extra": "v"},
        "topics": [*at_bound["topics"], "punch.create"],
    }
    for name, value in at_bound.items():
        body = {**base, name: value} if name != "topics" else {**base, "topic": value}
        made = await client.post("/v1/registrations", headers=headers, json=body)
        assert made.status_code == 201, (name, made.text)
        await sqlite_runtime.registrations.delete(made.json()["id"], org="acme")
    for name, value in beyond.items():
        body = {**base, name: value} if name != "topics" else {**base, "topic": value}
        refused = await client.post("/v1/registrations", headers=headers, json=body)
        assert refused.status_code == 422, (name, refused.text)
    key = _property(document, "/v1/events", "post", "key")["maxLength"]
    deadline = _property(document, "/v1/calls", "post", "deadline")["maximum"]
    emits = [
        {"topic": "punch.create", "data": {"punch": {"id": 1}}, "key": "k" * n}
        for n in (key, key + 1)
    ]
    answers = [await client.post("/v1/events", headers=headers, json=b) for b in emits]
    assert [a.status_code for a in answers] == [202, 422]
    header = next(
        p["schema"]["pattern"]
        for p in document["paths"]["/v1/events"]["post"]["parameters"]
        if p["name"] == "Idempotency-Key"
    )
    for value in ("k" * key, "k" * (key + 1), " k", "k\tk"):
        sent = await client.post(
            "/v1/events", headers={**headers, "Idempotency-Key": value}, json=emits[0]
        )
        assert sent.status_code == (202 if re.fullmatch(header, value) else 422), value
    call = {"topic": "user_logged_in", "data": {"id": "u1"}, "deadline": deadline * 2}
    assert (await client.post("/v1/calls", headers=headers, json=call)).status_code == 422
    limit = next(
        p["schema"]["maximum"]
        for p in document["paths"]["/v1/deliveries"]["get"]["parameters"]
        if p["name"] == "limit"
    )
    pages = [
        await client.get(f"/v1/deliveries?limit={n}", headers=headers) for n in (limit, limit + 1)
    ]
    assert [p.status_code for p in pages] == [200, 422]
