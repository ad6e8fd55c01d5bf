"""The dashboard over HTTP, in-process: sign-in, session cookie, CSRF, scopes, org
isolation, and the deliveries pages against real deliveries to a loopback receiver."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator

import httpx
import pytest

from hookruntime import HookRuntime
from hookruntime.api import create_app
from hookruntime.testing import LoopbackReceiver, Reply, eventually

pytestmark = pytest.mark.anyio
ALL = ["webhooks:manage", "events:emit", "hooks:call", "deliveries:read"]
Client = httpx.AsyncClient


@pytest.fixture
async def runtime_ui(database_url: str, master_key: str) -> AsyncIterator[HookRuntime]:
    runtime = HookRuntime(
        database_url,
        master_key=master_key,
        allow_private_targets=True,
        workers=1,
    )
    async with runtime:
        yield runtime


def client(runtime: HookRuntime) -> Client:
    transport = httpx.ASGITransport(app=create_app(runtime, manage_lifecycle=False))
    return httpx.AsyncClient(transport=transport, base_url="http://dash.test")


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None, "the page has no CSRF field"
    return found.group(1)


async def sign_in(http: Client, key: str) -> httpx.Response:
    form = await http.get("/ui/")
    return await http.post("/ui/signin", data={"csrf": csrf_of(form.text), "key": key})


async def dead_delivery(runtime: HookRuntime, receiver: LoopbackReceiver, org: str) -> str:
    """A delivery that failed its only attempt, so it is dead."""
    reg = await runtime.registrations.create(
        org=org,
        topics=["profile_updated"],
        url=receiver.url,
        secret="signature_secret_of_the_receiver",
        headers={"X-Shared-Token": "custom-header-secret"},
        retry_schedule=[],
        max_attempts=1,
    )
    event_id = await runtime.emit("profile_updated", {"id": "u1", "email": "a@b.c"}, org=org)

    async def dead() -> str | None:
        found = await runtime.deliveries.list(org=org, registration_id=reg.id, event_id=event_id)
        return found[0].id if found and found[0].status == "dead" else None

    return await eventually(dead)


async def test_visitor_without_session_gets_the_sign_in_form(runtime_ui: HookRuntime) -> None:
    async with client(runtime_ui) as http:
        for path in ("/ui/", "/ui/deliveries", "/ui/deliveries/dlv_whatever"):
            response = await http.get(path)
            assert response.status_code == 200
            assert '<form method="post" action="/ui/signin"' in response.text
            assert 'name="key"' in response.text


async def test_unknown_key_is_refused_and_opens_no_session(runtime_ui: HookRuntime) -> None:
    async with client(runtime_ui) as http:
        response = await sign_in(http, "hrk_000000000000_notarealkeynotarealkey")
        assert response.status_code == 401
        assert "unknown or revoked" in response.text
        assert "hookruntime_session" not in http.cookies
        assert "/ui/signin" in (await http.get("/ui/deliveries")).text


async def test_session_cookie_is_httponly_and_samesite_strict(runtime_ui: HookRuntime) -> None:
    key = await runtime_ui.keys.create(org="acme", scopes=ALL)
    async with client(runtime_ui) as http:
        response = await sign_in(http, key.key)
    assert response.status_code == 303 and response.headers["location"] == "/ui/"
    cookie = next(
        v for k, v in response.headers.multi_items() if k == "set-cookie" and "session" in v
    )
    flags = {part.strip().lower() for part in cookie.split(";")}
    assert "httponly" in flags and "samesite=strict" in flags and "path=/ui" in flags
    assert key.key not in cookie


async def test_sign_in_without_csrf_token_is_refused(runtime_ui: HookRuntime) -> None:
    key = await runtime_ui.keys.create(org="acme", scopes=ALL)
    async with client(runtime_ui) as http:
        response = await http.post("/ui/signin", data={"key": key.key})
        assert response.status_code == 403
        assert "hookruntime_session" not in http.cookies


async def test_retry_without_csrf_token_is_refused_and_changes_nothing(
    runtime_ui: HookRuntime,
) -> None:
    key = await runtime_ui.keys.create(org="acme", scopes=ALL)
    async with LoopbackReceiver(lambda _r: Reply(500)) as receiver:
        delivery_id = await dead_delivery(runtime_ui, receiver, "acme")
        async with client(runtime_ui) as http:
            await sign_in(http, key.key)
            missing = await http.post(f"/ui/deliveries/{delivery_id}/retry", data={})
            wrong = await http.post(f"/ui/deliveries/{delivery_id}/retry", data={"csrf": "forged"})
            bulk = await http.post("/ui/deliveries/retry", data={"status": "dead"})
    assert [r.status_code for r in (missing, wrong, bulk)] == [403, 403, 403]
    assert (await runtime_ui.deliveries.get(delivery_id, org="acme")).status == "dead"
    assert len(receiver.received) == 1


async def test_another_orgs_delivery_is_not_found(runtime_ui: HookRuntime) -> None:
    ours = await runtime_ui.keys.create(org="acme", scopes=ALL)
    async with LoopbackReceiver(lambda _r: Reply(500)) as receiver:
        theirs = await dead_delivery(runtime_ui, receiver, "globex")
        async with client(runtime_ui) as http:
            await sign_in(http, ours.key)
            page = await http.get(f"/ui/deliveries/{theirs}")
            listed = await http.get("/ui/deliveries")
            form = await http.get("/ui/deliveries")
            retry = await http.post(
                f"/ui/deliveries/{theirs}/retry", data={"csrf": csrf_of(form.text)}
            )
    assert page.status_code == 404 and retry.status_code == 404
    assert theirs not in listed.text
    assert (await runtime_ui.deliveries.get(theirs, org="globex")).status == "dead"


async def test_key_without_deliveries_read_cannot_see_deliveries(
    runtime_ui: HookRuntime,
) -> None:
    key = await runtime_ui.keys.create(org="acme", scopes=["events:emit"])
    async with LoopbackReceiver(lambda _r: Reply(500)) as receiver:
        delivery_id = await dead_delivery(runtime_ui, receiver, "acme")
        async with client(runtime_ui) as http:
            await sign_in(http, key.key)
            listing = await http.get("/ui/deliveries")
            detail = await http.get(f"/ui/deliveries/{delivery_id}")
    assert listing.status_code == 403 and detail.status_code == 403
    assert "deliveries:read" in detail.text and delivery_id not in detail.text


async def test_revoked_key_ends_its_session(runtime_ui: HookRuntime) -> None:
    key = await runtime_ui.keys.create(org="acme", scopes=ALL)
    async with client(runtime_ui) as http:
        await sign_in(http, key.key)
        assert "Deliveries" in (await http.get("/ui/deliveries")).text
        await runtime_ui.keys.revoke(key.id, org="acme")
        after = await http.get("/ui/deliveries")
    assert '<form method="post" action="/ui/signin"' in after.text


async def test_key_never_appears_in_a_url_redirect_or_log_line(
    runtime_ui: HookRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    key = await runtime_ui.keys.create(org="acme", scopes=ALL)
    seen: list[str] = []

    async def remember(response: httpx.Response) -> None:
        seen.append(str(response.request.url))
        seen.append(response.headers.get("location", ""))
        seen.extend(v for k, v in response.headers.multi_items() if k == "set-cookie")

    caplog.set_level(logging.DEBUG)
    async with client(runtime_ui) as http:
        http.event_hooks["response"] = [remember]
        await sign_in(http, key.key)
        await http.get("/ui/")
        await sign_in(http, key.key + "x")  # a refused key is not logged either
    secret_part = key.key.rsplit("_", 1)[1]
    assert seen and all(secret_part not in line for line in seen)
    assert all(secret_part not in r.getMessage() for r in caplog.records)


async def test_dead_delivery_shows_its_attempt_and_redacted_request_then_retries(
    runtime_ui: HookRuntime,
) -> None:
    key = await runtime_ui.keys.create(org="acme", scopes=ALL)
    answers = iter([Reply(500, b'{"error":"boom"}'), Reply(200)])
    async with LoopbackReceiver(lambda _r: next(answers)) as receiver:
        delivery_id = await dead_delivery(runtime_ui, receiver, "acme")
        async with client(runtime_ui) as http:
            await sign_in(http, key.key)
            listing = await http.get("/ui/deliveries", params={"status": "dead"})
            assert delivery_id in listing.text
            detail = await http.get(f"/ui/deliveries/{delivery_id}")
            assert "HTTP 500" in detail.text and "boom" in detail.text
            assert "x-shared-token: [redacted]" in detail.text.lower()
            for secret in ("custom-header-secret", "signature_secret_of_the_receiver"):
                assert secret not in detail.text
            retried = await http.post(
                f"/ui/deliveries/{delivery_id}/retry", data={"csrf": csrf_of(detail.text)}
            )
            assert retried.status_code == 303

            async def delivered() -> bool:
                found = await runtime_ui.deliveries.get(delivery_id, org="acme")
                return found.status == "delivered"

            await eventually(delivered)
            assert "delivered" in (await http.get(f"/ui/deliveries/{delivery_id}")).text


async def test_retry_all_matching_asks_first_then_reports_progress(
    runtime_ui: HookRuntime,
) -> None:
    key = await runtime_ui.keys.create(org="acme", scopes=ALL)
    async with LoopbackReceiver(lambda _r: Reply(500)) as receiver:
        first = await dead_delivery(runtime_ui, receiver, "acme")
        second = await dead_delivery(runtime_ui, receiver, "acme")
        receiver.handler = lambda _r: Reply(200)
        async with client(runtime_ui) as http:
            await sign_in(http, key.key)
            confirm = await http.get("/ui/deliveries/retry", params={"status": "dead"})
            assert re.search(r'id="match-count">3<', confirm.text)  # reg 1 got both events
            assert (await runtime_ui.deliveries.get(first, org="acme")).status == "dead"
            done = await http.post(
                "/ui/deliveries/retry",
                data={"csrf": csrf_of(confirm.text), "status": "dead"},
                follow_redirects=True,
            )
            assert "3 of 3 deliveries restarted" in done.text

        async def both_delivered() -> bool:
            states = {
                (await runtime_ui.deliveries.get(d, org="acme")).status for d in (first, second)
            }
            return states == {"delivered"}

        await eventually(both_delivered)


async def test_deliveries_list_pages_newest_first_and_refuses_bad_filters(
    runtime_ui: HookRuntime,
) -> None:
    key = await runtime_ui.keys.create(org="acme", scopes=ALL)
    async with LoopbackReceiver() as receiver:
        await runtime_ui.registrations.create(
            org="acme", topics=["profile_updated"], url=receiver.url
        )
        ids = await runtime_ui.emit_many(
            "profile_updated", [{"id": str(i)} for i in range(55)], org="acme"
        )
        async with client(runtime_ui) as http:
            await sign_in(http, key.key)
            first = await http.get("/ui/deliveries")
            older = re.search(r'href="(/ui/deliveries\?before=[^"]+)"', first.text)
            assert older is not None
            second = await http.get(older.group(1).replace("&amp;", "&"))
            bad = await http.get("/ui/deliveries", params={"status": "bogus"})
            future = await http.get("/ui/deliveries", params={"since": "2999-01-01T00:00"})
            past = await http.get("/ui/deliveries", params={"until": "2000-01-01T00:00"})
            recent = await http.get("/ui/deliveries", params={"since": "2000-01-01T00:00"})

    def events(html: str) -> list[str]:
        return re.findall(r"dlv_[0-9a-z]{26}", html)

    assert len(set(events(first.text))) == 50 and len(set(events(second.text))) == 5
    assert not set(events(first.text)) & set(events(second.text))
    newest = await runtime_ui.deliveries.list(org="acme", event_id=ids[-1])
    assert events(first.text)[0] == newest[0].id
    assert bad.status_code == 422 and "status" in bad.text
    assert not events(future.text) and not events(past.text) and len(set(events(recent.text))) == 50
    assert 'value="2999-01-01T00:00"' in future.text


async def test_overview_counts_outcomes_per_topic_and_registration(
    runtime_ui: HookRuntime,
) -> None:
    key = await runtime_ui.keys.create(org="acme", scopes=ALL)
    async with LoopbackReceiver(lambda _r: Reply(500)) as receiver:
        await dead_delivery(runtime_ui, receiver, "acme")
        await dead_delivery(runtime_ui, receiver, "globex")  # not counted for acme
        async with client(runtime_ui) as http:
            await sign_in(http, key.key)
            hour = await http.get("/ui/")
            day = await http.get("/ui/", params={"window": "day"})
    for response in (hour, day):
        assert response.status_code == 200
        dead = re.search(r'status=dead">(\d+)</a></b><span>dead', response.text)
        assert dead is not None and dead.group(1) == "1"
        assert "profile_updated" in response.text and receiver.url in response.text
        assert "<svg" in response.text and "0.0 %" in response.text


async def test_docs_page_is_self_contained(runtime_ui: HookRuntime) -> None:
    async with client(runtime_ui) as http:
        page = await http.get("/docs")
        script = await http.get("/ui/static/docs.js")
    assert page.status_code == 200 and 'src="/ui/static/docs.js"' in page.text
    assert script.status_code == 200 and '"/openapi.json"' in script.text
    for text in (page.text, script.text):
        assert not re.search(r"(src|href)=\"(https?:)?//", text)
        assert "http://" not in text and "https://" not in text


async def test_overview_of_a_busy_window_counts_the_newest_and_says_so(
    runtime_ui: HookRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hookruntime.ui import stats

    monkeypatch.setattr(stats, "SAMPLE", 2)
    key = await runtime_ui.keys.create(org="acme", scopes=ALL)
    async with LoopbackReceiver(lambda _r: Reply(500)) as receiver:
        for _ in range(2):
            await dead_delivery(runtime_ui, receiver, "acme")  # 3 dead in all
        async with client(runtime_ui) as http:
            await sign_in(http, key.key)
            response = await http.get("/ui/")
    assert "the figures count the newest 2 deliveries" in response.text


async def test_topic_scopes_hide_deliveries_and_registrations_of_scoped_topics(
    runtime_ui: HookRuntime,
) -> None:
    plain = await runtime_ui.keys.create(org="acme", scopes=ALL)
    scoped = await runtime_ui.keys.create(org="acme", scopes=[*ALL, "customers"])
    async with LoopbackReceiver(lambda _r: Reply(500)) as receiver:
        reg = await runtime_ui.registrations.create(
            org="acme", topics=["customers.created"], url=receiver.url, retry_schedule=[]
        )
        sample = runtime_ui.catalog["customers.created"].sample
        event_id = await runtime_ui.emit("customers.created", dict(sample), org="acme")

        async def dead() -> str | None:
            found = await runtime_ui.deliveries.list(org="acme", event_id=event_id, status="dead")
            return found[0].id if found else None

        delivery_id = await eventually(dead)
        async with client(runtime_ui) as http:
            await sign_in(http, plain.key)
            listing = await http.get("/ui/deliveries")
            detail = await http.get(f"/ui/deliveries/{delivery_id}")
            by_topic = await http.get("/ui/deliveries", params={"topic": "customers.created"})
            registrations = await http.get("/ui/registrations")
            registration = await http.get(f"/ui/registrations/{reg.id}")
            retry = await http.post(
                f"/ui/deliveries/{delivery_id}/retry", data={"csrf": csrf_of(listing.text)}
            )
            retry_all = await http.get("/ui/deliveries/retry", params={"status": "dead"})
            visible = await dead_delivery(runtime_ui, receiver, "acme")
            before = await runtime_ui.deliveries.get(delivery_id, org="acme")
            confirm = await http.get("/ui/deliveries/retry", params={"status": "dead"})
            done = await http.post(
                "/ui/deliveries/retry",
                data={"csrf": csrf_of(confirm.text), "status": "dead"},
                follow_redirects=True,
            )
            after = await runtime_ui.deliveries.get(delivery_id, org="acme")
        async with client(runtime_ui) as http:
            await sign_in(http, scoped.key)
            allowed = await http.get(f"/ui/deliveries/{delivery_id}")
            allowed_list = await http.get("/ui/deliveries")
    assert delivery_id not in listing.text and reg.id not in registrations.text
    assert [r.status_code for r in (detail, by_topic, registration, retry)] == [403] * 4
    assert "customers" in detail.text
    assert re.search(r'id="match-count">0<', retry_all.text)
    assert (await runtime_ui.deliveries.get(delivery_id, org="acme")).status == "dead"
    assert allowed.status_code == 200 and delivery_id in allowed_list.text
    assert re.search(r'id="match-count">1<', confirm.text)
    assert "1 of 1 deliveries restarted" in done.text and visible not in confirm.text
    assert (after.status, after.updated_at) == ("dead", before.updated_at)


async def test_bad_input_is_answered_4xx_never_5xx(runtime_ui: HookRuntime) -> None:
    key = await runtime_ui.keys.create(org="acme", scopes=ALL)
    async with client(runtime_ui) as http:
        await sign_in(http, key.key)
        csrf = csrf_of((await http.get("/ui/")).text)
        gets = [
            "/ui/deliveries?since=tomorrow",
            "/ui/deliveries?until=nan",
            "/ui/deliveries?before=%00~",
            "/ui/deliveries?status=%FF",
            "/ui/deliveries?topic=%00&registration_id=%00&event_id=%00",
            "/ui/deliveries?before=1.5~%00",
            "/ui/registrations/%00",
            "/ui/deliveries/%00",
            "/ui/deliveries/retry?status=pending",
            "/ui/deliveries/retry?status=dead&event_id=evt_x",
            "/ui/registrations/nope",
            "/ui/calls/call_zzzzzzzzzzzzzzzzzzzzzzzzzz",
            "/ui/calls/nope",
            "/ui/jobs/nope",
            "/ui/?window=century",
        ]
        answers = [(path, (await http.get(path)).status_code) for path in gets]
        posts = [
            ("/ui/deliveries/retry", {"csrf": csrf, "status": "delivering"}),
            ("/ui/deliveries/dlv_nope/retry", {"csrf": csrf}),
            ("/ui/registrations/reg_nope/active", {"csrf": csrf, "rev": "", "active": "x"}),
            ("/ui/registrations/reg_nope/rotate-secret", {"csrf": csrf}),
            ("/ui/registrations/reg_nope/test", {"csrf": csrf}),
        ]
        for path, form in posts:
            answers.append((path, (await http.post(path, data=form)).status_code))
        raw = await http.post(
            "/ui/signout",
            content=b"csrf=\xff\xfe",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        answers.append(("signout with bad bytes", raw.status_code))
        huge = await http.post("/ui/signout", data={"csrf": csrf, "x": "y" * 100_000})
        answers.append(("huge form", huge.status_code))
    assert all(200 <= code < 500 for _, code in answers), answers
