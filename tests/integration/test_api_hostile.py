"""Hostile input on every route, on both engines: always a precise 4xx problem, never a
5xx, and a refused write changes nothing (no row, no ``webhook.*`` announcement)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import anyio
import anyio.lowlevel
import httpx
import pytest
from sqlalchemy import func, select

from hookruntime import HookRuntime
from hookruntime.api import create_app
from hookruntime.store.models import DELIVERIES, EVENTS, REGISTRATIONS

pytestmark = pytest.mark.anyio
ALL = ["webhooks:manage", "events:emit", "hooks:call", "deliveries:read"]
URL = "https://hr.example/in"


@dataclass
class Api:
    runtime: HookRuntime
    client: httpx.AsyncClient
    headers: dict[str, str]
    ids: dict[str, str]


@pytest.fixture
async def api(runtime: HookRuntime) -> AsyncIterator[Api]:
    key = await runtime.keys.create(org="acme", scopes=ALL)
    reg = await runtime.registrations.create(org="acme", topics=["punch.create"], url=URL)
    event_id = await runtime.emit("punch.create", {"punch": {"id": 1}}, org="acme")
    delivery = (await runtime.deliveries.list(org="acme", event_id=event_id))[0]
    transport = httpx.ASGITransport(
        app=create_app(runtime, manage_lifecycle=False), raise_app_exceptions=False
    )
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        yield Api(
            runtime,
            client,
            {"Authorization": f"Bearer {key.key}", "Content-Type": "application/json"},
            {"reg": reg.id, "rev": reg.rev, "dlv": delivery.id, "evt": event_id},
        )


async def counts(runtime: HookRuntime) -> tuple[int, ...]:
    async with runtime.database.engine.connect() as conn:
        return tuple(
            [
                (await conn.execute(select(func.count()).select_from(table))).scalar_one()
                for table in (REGISTRATIONS, EVENTS, DELIVERIES)
            ]
        )


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


REG = '"topics":["punch.create"],"url":"https://hr.example/in"'
HUGE = "9" * 5000
#: (method, path, body). Paths and bodies name the fixture's objects as {reg}, {rev}, ….
HOSTILE: list[tuple[str, str, str | None]] = [
    # nesting deep enough to exhaust the parser's or a later walker's recursion
    ("POST", "/v1/registrations", nested(5000)),
    ("POST", "/v1/registrations", "{" + REG + ',"headers":' + nested(900) + "}"),
    ("POST", "/v1/events", '{"topic":"punch.create","data":' + nested(900) + "}"),
    ("POST", "/v1/events", '{"topic":"punch.create","data":{"punch":' + nested(70) + "}}"),
    # too deep, beside a valid surrogate pair (which sends the body through the string walk)
    ("POST", "/v1/events", '{"topic":"punch.create","data":["\\ud83d\\ude00",' + nested(70) + "]}"),
    ("POST", "/v1/calls", '{"topic":"user_logged_in","data":' + nested(5000) + "}"),
    ("PATCH", "/v1/registrations/{reg}", '{"rev":"{rev}","headers":' + nested(2000) + "}"),
    ("POST", "/v1/deliveries/retry", nested(3000)),
    # wrong JSON types for fields
    ("POST", "/v1/registrations", '{"topics":5,"url":"https://hr.example/in"}'),
    ("POST", "/v1/registrations", '{"topics":[{}],"url":"https://hr.example/in"}'),
    ("POST", "/v1/registrations", '{"topics":[["a"]],"url":"https://hr.example/in"}'),
    ("POST", "/v1/registrations", '{"topics":{"a":1},"url":"https://hr.example/in"}'),
    ("POST", "/v1/registrations", '{"topics":true,"url":"https://hr.example/in"}'),
    ("POST", "/v1/registrations", '{"topics":["punch.create"],"url":5}'),
    ("POST", "/v1/registrations", "{" + REG + ',"secret":5}'),
    ("POST", "/v1/registrations", "{" + REG + ',"headers":[1]}'),
    ("POST", "/v1/registrations", "{" + REG + ',"headers":{"X-A":5}}'),
    ("POST", "/v1/registrations", "{" + REG + ',"retry_schedule":"5"}'),
    ("POST", "/v1/registrations", "{" + REG + ',"retry_schedule":[[1]]}'),
    ("POST", "/v1/registrations", "{" + REG + ',"priority":"x"}'),
    ("POST", "/v1/registrations", "{" + REG + ',"timeout":"x"}'),
    ("POST", "/v1/registrations", "{" + REG + ',"max_attempts":1.5}'),
    ("POST", "/v1/registrations", "{" + REG + ',"description":5}'),
    ("POST", "/v1/registrations", "{" + REG + ',"profile":5}'),
    ("POST", "/v1/registrations", "{" + REG + ',"profile":["jws"]}'),
    ("POST", "/v1/registrations", "{" + REG + ',"on_failure":{}}'),
    ("POST", "/v1/registrations", "{" + REG + ',"active":"yes"}'),
    ("PATCH", "/v1/registrations/{reg}", '{"rev":"{rev}","topics":5}'),
    ("PATCH", "/v1/registrations/{reg}", '{"rev":"{rev}","topics":[null]}'),
    ("PATCH", "/v1/registrations/{reg}", '{"rev":0,"priority":1}'),
    ("PATCH", "/v1/registrations/{reg}", '{"rev":["{rev}"],"priority":1}'),
    ("PUT", "/v1/registrations/{reg}", '{"rev":"{rev}","topics":{"x":1},"url":"https://a.b/"}'),
    ("DELETE", "/v1/registrations/{reg}", '{"rev":{"a":1}}'),
    ("POST", "/v1/registrations/{reg}/rotate-secret", '{"grace":"x"}'),
    ("POST", "/v1/registrations/{reg}/rotate-secret", '{"grace":[1]}'),
    ("POST", "/v1/registrations/{reg}/rotate-secret", '{"grace":true}'),
    ("POST", "/v1/registrations/{reg}/rotate-secret", '{"secret":5}'),
    ("POST", "/v1/registrations/{reg}/rotate-secret", '{"rev":5}'),
    ("POST", "/v1/registrations/{reg}/rotate-secret", '{"secret":"' + " " * 40 + '"}'),
    ("POST", "/v1/registrations/{reg}/test", '{"topic":5}'),
    ("POST", "/v1/registrations/{reg}/test", '{"topic":{"a":1}}'),
    ("POST", "/v1/test", '{"topic":5}'),
    ("POST", "/v1/test", '{"topic":["punch.create"]}'),
    ("POST", "/v1/events", '{"topic":["punch.create"],"data":{}}'),
    ("POST", "/v1/events", '{"topic":"punch.create","data":{"punch":{"id":1}},"key":5}'),
    ("POST", "/v1/calls", '{"topic":"user_logged_in","data":{"id":"u"},"deadline":"x"}'),
    ("POST", "/v1/calls", '{"topic":{},"data":{"id":"u"}}'),
    ("POST", "/v1/deliveries/retry", '{"status":5}'),
    ("POST", "/v1/deliveries/retry", '{"status":["dead"]}'),
    ("POST", "/v1/deliveries/retry", '{"topic":5}'),
    ("POST", "/v1/deliveries/retry", '{"registration_id":[]}'),
    ("POST", "/v1/deliveries/retry", '{"since":"x"}'),
    # lone surrogates, in values and in names
    ("POST", "/v1/registrations", "{" + REG + ',"headers":{"X-A":"\\ud800"}}'),
    ("POST", "/v1/registrations", "{" + REG + ',"headers":{"\\ud800":"v"}}'),
    ("POST", "/v1/registrations", "{" + REG + ',"description":"a\\udfffb"}'),
    ("POST", "/v1/registrations", '{"topics":["\\ud800"],"url":"https://hr.example/in"}'),
    ("POST", "/v1/registrations", '{"topics":["punch.create"],"url":"https://a.b/\\ud800"}'),
    ("PATCH", "/v1/registrations/{reg}", '{"rev":"{rev}","headers":{"X-A":"\\udc00"}}'),
    ("POST", "/v1/events", '{"topic":"punch.create","data":{"punch":{"id":"\\ud800"}}}'),
    ("POST", "/v1/events", '{"topic":"punch.create","data":{"punch":{"\\ud800":1}}}'),
    ("POST", "/v1/calls", '{"topic":"user_logged_in","data":{"id":"\\ud800"}}'),
    ("POST", "/v1/test", '{"topic":"\\ud800"}'),
    # NUL characters, which PostgreSQL cannot store
    ("POST", "/v1/registrations", "{" + REG + ',"description":"a\\u0000b"}'),
    ("POST", "/v1/registrations", "{" + REG + ',"secret":"aaaaaaaaaaaaaaaaaaaa\\u0000"}'),
    ("POST", "/v1/registrations", '{"topics":["punch.create"],"url":"https://a.b/\\u0000"}'),
    ("POST", "/v1/events", '{"topic":"punch.create","data":{"punch":{"id":"\\u0000"}}}'),
    ("POST", "/v1/events", '{"topic":"punch.create","data":{"punch":{"id":1}},"key":"\\u0000"}'),
    ("POST", "/v1/events", '{"topic":"punch.create\\u0000","data":{}}'),
    ("POST", "/v1/deliveries/retry", '{"topic":"\\u0000"}'),
    ("POST", "/v1/deliveries/retry", '{"registration_id":"reg\\u0000"}'),
    ("PATCH", "/v1/registrations/{reg}", '{"rev":"{rev}\\u0000","priority":1}'),
    ("GET", "/v1/registrations?topic=%00", None),
    ("GET", "/v1/registrations?after=%00", None),
    ("GET", "/v1/deliveries?topic=%00", None),
    ("GET", "/v1/deliveries?after=%00", None),
    ("GET", "/v1/deliveries?registration_id=a%00", None),
    ("GET", "/v1/deliveries?status=%00", None),
    ("GET", "/v1/registrations/%00", None),
    ("PATCH", "/v1/registrations/%00", '{"rev":"x","priority":1}'),
    ("DELETE", "/v1/registrations/a%00", None),
    ("POST", "/v1/registrations/%00/rotate-secret", None),
    ("POST", "/v1/registrations/%00/test", None),
    ("GET", "/v1/deliveries/%00", None),
    ("POST", "/v1/deliveries/%00/retry", None),
    ("GET", "/v1/events/%00", None),
    # huge numbers, and numbers JSON does not have
    ("POST", "/v1/registrations", "{" + REG + ',"priority":' + HUGE + "}"),
    ("POST", "/v1/registrations", "{" + REG + ',"timeout":1' + "0" * 400 + "}"),
    ("POST", "/v1/registrations", "{" + REG + ',"retry_schedule":[1' + "0" * 400 + "]}"),
    ("POST", "/v1/registrations", "{" + REG + ',"max_attempts":1' + "0" * 30 + "}"),
    ("POST", "/v1/registrations/{reg}/rotate-secret", '{"grace":1' + "0" * 400 + "}"),
    ("POST", "/v1/deliveries/retry", '{"since":1' + "0" * 30 + "}"),
    ("POST", "/v1/deliveries/retry", '{"until":-1' + "0" * 400 + "}"),
    ("POST", "/v1/deliveries/retry", '{"since":1e308}'),
    ("POST", "/v1/events", '{"topic":"punch.create","data":{"punch":{"id":NaN}}}'),
    ("POST", "/v1/events", '{"topic":"punch.create","data":{"punch":{"id":Infinity}}}'),
    ("POST", "/v1/calls", '{"topic":"user_logged_in","data":{"id":"u","n":NaN}}'),
    ("POST", "/v1/calls", '{"topic":"user_logged_in","data":{"id":"u"},"deadline":-Infinity}'),
    ("POST", "/v1/calls", '{"topic":"user_logged_in","data":{"id":"u"},"deadline":' + HUGE + "}"),
    ("POST", "/v1/calls", '{"topic":"user_logged_in","data":{},"deadline":1' + "0" * 400 + "}"),
    ("GET", "/v1/deliveries?since=1e300", None),
    ("GET", "/v1/deliveries?until=-1" + "0" * 400, None),
    ("GET", "/v1/deliveries?limit=" + "9" * 40, None),
    ("GET", "/v1/registrations?limit=-" + "9" * 40, None),
    # bodies that are not UTF-8 JSON
    ("POST", "/v1/registrations", '{"topics":["punch.create"],"url":"https://hr.example/\udc80"}'),
    # runtime's own topics, which only the runtime emits
    ("POST", "/v1/events", '{"topic":"webhook.created","data":{"webhook_id":"x"}}'),
    ("POST", "/v1/events", '{"topic":"webhook.disabled","data":{}}'),
]


def encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


async def test_hostile_input_gets_a_4xx_problem_and_changes_nothing(api: Api) -> None:
    before = await counts(api.runtime)
    wrong = []
    for method, template, body in HOSTILE:
        path = template.format(**api.ids) if "{" in template else template
        content = None if body is None else encode(body.replace("{rev}", api.ids["rev"]))
        answer = await api.client.request(method, path, headers=api.headers, content=content)
        problem = answer.headers.get("content-type") == "application/problem+json"
        if not (400 <= answer.status_code < 500 and problem):
            wrong.append((method, template, (body or "")[:80], answer.status_code))
    assert wrong == []
    assert await counts(api.runtime) == before
    registration = await api.runtime.registrations.get(api.ids["reg"], org="acme")
    assert registration.rev == api.ids["rev"]


@pytest.mark.parametrize("depth", [b"\xb2", b"9" * 5000, b"-1", b"x"])
async def test_a_malformed_hook_depth_is_refused(api: Api, depth: bytes) -> None:
    headers = [*api.headers.items(), ("X-Hook-Depth", depth)]
    body = {"topic": "user_logged_in", "data": {"id": "u1"}}
    answer = await api.client.post("/v1/calls", headers=headers, json=body)
    assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "X-Hook-Depth"


async def test_a_utf16_body_is_refused_as_malformed(api: Api) -> None:
    body = json.dumps({"topics": ["punch.create"], "url": URL}).encode("utf-16")
    answer = await api.client.post("/v1/registrations", headers=api.headers, content=body)
    assert answer.status_code == 400 and answer.json()["title"] == "Malformed JSON"


async def test_a_bad_header_value_writes_no_registration_and_announces_nothing(
    api: Api,
) -> None:
    before = await counts(api.runtime)
    body = {"topics": ["punch.create"], "url": URL, "headers": {"X-Token": "\ud800"}}
    answer = await api.client.post(
        "/v1/registrations",
        headers=api.headers,
        content=json.dumps(body).encode(),  # json.dumps escapes the lone surrogate
    )
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "headers.X-Token"
    assert await counts(api.runtime) == before  # no registration, no webhook.created event


async def test_the_field_at_fault_is_named(api: Api) -> None:
    cases = {
        '{"topic":"punch.create","data":{"punch":{"id":"\\u0000"}}}': "data.punch.id",
        '{"topic":"punch.create","data":{"list":[1,"\\ud800"]}}': "data.list.1",
        '{"topic":"punch.create","data":{"punch":{"id":1}},"key":"\\u0000"}': "key",
    }
    for body, field in cases.items():
        answer = await api.client.post("/v1/events", headers=api.headers, content=body.encode())
        assert answer.status_code == 422
        assert [e["field"] for e in answer.json()["errors"]] == [field]


async def test_surrogate_pairs_64_levels_and_a_byte_order_mark_are_accepted(api: Api) -> None:
    data = {"punch": {"id": 1, "note": "\U0001f600"}, "deep": json.loads(nested(62))}
    answer = await api.client.post(
        "/v1/events",
        headers=api.headers,
        content=json.dumps({"topic": "punch.create", "data": data}),
    )
    assert answer.status_code == 202, answer.text
    event = await api.client.get(f"/v1/events/{answer.json()['id']}", headers=api.headers)
    assert event.json()["data"]["punch"]["note"] == "\U0001f600"
    with_bom = b"\xef\xbb\xbf" + json.dumps({"topic": "punch.create", "data": data}).encode()
    answer = await api.client.post("/v1/events", headers=api.headers, content=with_bom)
    assert answer.status_code == 202, answer.text


async def test_4000_unknown_topics_are_refused_at_once_without_holding_the_loop(
    api: Api,
) -> None:
    body = {"topics": [f"nope.topic_{i}" for i in range(4000)], "url": URL}
    took: dict[str, float] = {}

    async def big() -> None:
        start = time.perf_counter()
        answer = await api.client.post("/v1/registrations", headers=api.headers, json=body)
        took["big"] = time.perf_counter() - start
        assert answer.status_code == 422
        assert answer.json()["errors"] == [
            {"field": "topics", "message": "at most 100 topics per registration"}
        ]

    async def small() -> None:
        await anyio.sleep(0.001)
        start = time.perf_counter()
        answer = await api.client.get("/healthz")
        took["small"] = time.perf_counter() - start
        assert answer.status_code == 200

    async with anyio.create_task_group() as group:
        group.start_soon(big)
        group.start_soon(small)
    # Before the bound, matching 4,000 names took 4-8 s on the loop.
    assert took["big"] < 0.5 and took["small"] < 0.5, took


async def test_did_you_mean_is_computed_for_a_few_unknown_topics_only(api: Api) -> None:
    names = ["punch.creat", *[f"nope.topic_{i}" for i in range(99)]]
    answer = await api.client.post(
        "/v1/registrations", headers=api.headers, json={"topics": names, "url": URL}
    )
    errors = answer.json()["errors"]
    assert answer.status_code == 422 and len(errors) == 100
    assert "did you mean 'punch.create'" in errors[0]["message"]
    assert errors[-1]["message"] == "unknown topic 'nope.topic_98'"


async def test_a_body_of_50000_unknown_fields_names_20(api: Api) -> None:
    body = json.dumps({f"field_{i:05}": 1 for i in range(50_000)}).encode()
    answer = await api.client.post("/v1/registrations", headers=api.headers, content=body)
    assert answer.status_code == 422
    assert [e["field"] for e in answer.json()["errors"]] == [f"field_{i:05}" for i in range(20)]


@pytest.mark.parametrize("size", [b"\xb2", b"9" * 5000, b"-5", b"1e9"])
async def test_a_content_length_that_is_not_a_size_is_no_500(api: Api, size: bytes) -> None:
    body = json.dumps({"topic": "punch.create", "data": {"punch": {"id": 1}}}).encode()
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/events",
        "raw_path": b"/v1/events",
        "query_string": b"",
        "headers": [
            *((k.lower().encode(), v.encode()) for k, v in api.headers.items()),
            (b"content-length", size),
        ],
    }
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    await create_app(api.runtime, manage_lifecycle=False)(scope, receive, send)
    assert sent[0]["status"] == 202  # the body read decides, not the header
