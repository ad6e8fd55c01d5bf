"""The dashboard's blocking-call and topic pages."""

from __future__ import annotations

import re

import pytest
from test_ui import ALL, client, runtime_ui, sign_in

from hookruntime import HookRuntime
from hookruntime.testing import LoopbackReceiver, Reply

pytestmark = pytest.mark.anyio
__all__ = ["runtime_ui"]
CLAIMS = {"sub": "u1", "email": "a@b.c"}


async def test_calls_show_each_receiver_the_decision_and_a_waterfall(
    runtime_ui: HookRuntime,
) -> None:
    key = await runtime_ui.keys.create(org="acme", scopes=ALL)
    sample = runtime_ui.catalog["user_logged_in"].sample
    async with (
        LoopbackReceiver(lambda _r: Reply.json({"decision": "allow"})) as allow,
        LoopbackReceiver(lambda _r: Reply.json({"decision": "deny", "reason": "no"})) as deny,
    ):
        for receiver in (allow, deny):
            await runtime_ui.registrations.create(
                org="acme", topics=["user_logged_in"], url=receiver.url
            )
        result = await runtime_ui.call("user_logged_in", dict(sample), org="acme")
        assert not result.allowed
        await runtime_ui.attempts.flush()
        other = await runtime_ui.keys.create(org="globex", scopes=ALL)
        async with client(runtime_ui) as http:
            await sign_in(http, key.key)
            listing = await http.get("/ui/calls")
            call_id = re.search(r'href="/ui/calls/(call_[0-9a-z]+)"', listing.text)
            assert call_id is not None
            detail = await http.get(f"/ui/calls/{call_id.group(1)}")
        async with client(runtime_ui) as http:
            await sign_in(http, other.key)
            foreign = await http.get(f"/ui/calls/{call_id.group(1)}")
            foreign_list = await http.get("/ui/calls")
    assert 'id="call-decision">deny<' in detail.text
    assert detail.text.count('class="bar ') == 2 and "deadline" in detail.text
    assert foreign.status_code == 404 and call_id.group(1) not in foreign_list.text


async def test_call_page_shows_the_conflicts_and_deadline_the_call_recorded(
    runtime_ui: HookRuntime,
) -> None:
    key = await runtime_ui.keys.create(org="acme", scopes=ALL)
    sample = runtime_ui.catalog["user_logged_in"].sample
    async with (
        LoopbackReceiver(lambda _r: Reply.json({"patch": {"role": "admin"}})) as first,
        LoopbackReceiver(lambda _r: Reply.json({"patch": {"role": "guest"}})) as second,
    ):
        ids = [
            (
                await runtime_ui.registrations.create(
                    org="acme", topics=["user_logged_in"], url=rx.url, priority=n
                )
            ).id
            for n, rx in enumerate((first, second))
        ]
        result = await runtime_ui.call("user_logged_in", dict(sample), org="acme", deadline=0.75)
        assert [c.path for c in result.conflicts] == ["/role"]
        await runtime_ui.attempts.flush()
        async with client(runtime_ui) as http:
            await sign_in(http, key.key)
            listing = await http.get("/ui/calls")
            detail = await http.get(f"/ui/calls/{result.call_id}")
    assert "1 conflict(s)" in listing.text
    conflicts = detail.text.split('id="call-conflicts"')[1].split("</table>")[0]
    assert "<code>/role</code>" in conflicts
    assert conflicts.index(ids[0]) < conflicts.index(ids[1])  # kept from, dropped from
    assert 'id="call-deadline">750 ms<' in detail.text
    assert "deadline 750 ms" in detail.text  # the waterfall's line is the caller's deadline
    assert "the caller asked for" not in detail.text


async def test_call_page_says_when_the_topics_deadline_capped_the_callers(
    runtime_ui: HookRuntime,
) -> None:
    key = await runtime_ui.keys.create(org="acme", scopes=ALL)
    topic = runtime_ui.catalog["user_logged_in"]
    assert topic.deadline is not None
    async with LoopbackReceiver(lambda _r: Reply.json({"decision": "allow"})) as rx:
        await runtime_ui.registrations.create(org="acme", topics=["user_logged_in"], url=rx.url)
        asked = topic.deadline + 5
        result = await runtime_ui.call(
            "user_logged_in", dict(topic.sample), org="acme", deadline=asked
        )
        await runtime_ui.attempts.flush()
        async with client(runtime_ui) as http:
            await sign_in(http, key.key)
            detail = await http.get(f"/ui/calls/{result.call_id}")
    assert f'id="call-deadline">{topic.deadline:.1f} s<' in detail.text
    assert f"the caller asked for {asked:.1f} s" in detail.text


async def test_a_deny_recorded_by_the_call_is_shown_even_if_the_policy_changed_since(
    runtime_ui: HookRuntime,
) -> None:
    key = await runtime_ui.keys.create(org="acme", scopes=ALL)
    sample = runtime_ui.catalog["user_logged_in"].sample
    async with LoopbackReceiver(lambda _r: Reply(500)) as failing:
        reg = await runtime_ui.registrations.create(
            org="acme", topics=["user_logged_in"], url=failing.url, on_failure="deny"
        )
        result = await runtime_ui.call("user_logged_in", dict(sample), org="acme")
        assert not result.allowed
        await runtime_ui.registrations.update(reg.id, org="acme", rev=reg.rev, on_failure="ignore")
        await runtime_ui.attempts.flush()
        async with client(runtime_ui) as http:
            await sign_in(http, key.key)
            detail = await http.get(f"/ui/calls/{result.call_id}")
    assert 'id="call-decision">deny<' in detail.text
    assert "failure policy is deny" in detail.text


async def test_topics_page_shows_schema_and_sample(runtime_ui: HookRuntime) -> None:
    key = await runtime_ui.keys.create(org="acme", scopes=["events:emit"])
    async with client(runtime_ui) as http:
        await sign_in(http, key.key)
        response = await http.get("/ui/topics")
    assert response.status_code == 200
    assert 'id="topic-punch.create"' in response.text and "&#34;punch&#34;" in response.text
    assert "blocking" in response.text and "queued" in response.text
