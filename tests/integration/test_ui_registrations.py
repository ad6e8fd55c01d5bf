"""The dashboard's registration pages: health and attempts, enable/disable, secret
rotation shown once, test events, and the same org and scope rules as the API."""

from __future__ import annotations

import re

import pytest
from test_ui import ALL, client, csrf_of, dead_delivery, runtime_ui, sign_in

from hookruntime import HookRuntime
from hookruntime.testing import LoopbackReceiver, Reply, eventually

pytestmark = pytest.mark.anyio
__all__ = ["runtime_ui"]


def rev_of(html: str) -> str:
    found = re.search(r'name="rev" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


async def test_disable_then_enable_a_registration(runtime_ui: HookRuntime) -> None:
    key = await runtime_ui.keys.create(org="acme", scopes=ALL)
    reg = await runtime_ui.registrations.create(
        org="acme", topics=["profile_updated"], url="https://crm.example/hooks"
    )
    async with client(runtime_ui) as http:
        await sign_in(http, key.key)
        shown = await http.get(f"/ui/registrations/{reg.id}")
        form = {"csrf": csrf_of(shown.text), "rev": rev_of(shown.text), "active": "false"}
        off = await http.post(
            f"/ui/registrations/{reg.id}/active", data=form, follow_redirects=True
        )
        assert "Registration disabled" in off.text
        assert "Retry schedule</dt><dd>profile default</dd>" in shown.text
        assert not (await runtime_ui.registrations.get(reg.id, org="acme")).active
        stale = await http.post(f"/ui/registrations/{reg.id}/active", data=form)
        assert stale.status_code == 409
        form = {"csrf": csrf_of(off.text), "rev": rev_of(off.text), "active": "true"}
        on = await http.post(f"/ui/registrations/{reg.id}/active", data=form)
        assert on.status_code == 303
    assert (await runtime_ui.registrations.get(reg.id, org="acme")).active


async def test_rotated_secret_is_shown_once(runtime_ui: HookRuntime) -> None:
    key = await runtime_ui.keys.create(org="acme", scopes=ALL)
    reg = await runtime_ui.registrations.create(
        org="acme", topics=["profile_updated"], url="https://crm.example/hooks"
    )
    async with client(runtime_ui) as http:
        await sign_in(http, key.key)
        shown = await http.get(f"/ui/registrations/{reg.id}")
        rotated = await http.post(
            f"/ui/registrations/{reg.id}/rotate-secret",
            data={"csrf": csrf_of(shown.text), "rev": rev_of(shown.text)},
        )
        again = await http.get(f"/ui/registrations/{reg.id}")
    secret = re.search(r'<code id="new-secret">([^<]+)</code>', rotated.text)
    assert rotated.status_code == 200 and secret is not None
    assert rotated.headers["cache-control"] == "no-store"
    assert secret.group(1) not in again.text and reg.secret not in again.text


async def test_test_event_goes_to_the_registration_and_lists_its_delivery(
    runtime_ui: HookRuntime,
) -> None:
    key = await runtime_ui.keys.create(org="acme", scopes=ALL)
    async with LoopbackReceiver() as receiver:
        reg = await runtime_ui.registrations.create(
            org="acme", topics=["profile_updated"], url=receiver.url
        )
        async with client(runtime_ui) as http:
            await sign_in(http, key.key)
            shown = await http.get(f"/ui/registrations/{reg.id}")
            sent = await http.post(
                f"/ui/registrations/{reg.id}/test",
                data={"csrf": csrf_of(shown.text)},
                follow_redirects=True,
            )
            assert "/ui/deliveries?event_id=evt_" in str(sent.url)
            assert reg.id in sent.text or receiver.url in sent.text
            await eventually(lambda: receiver.received)
            await eventually(lambda: runtime_ui.deliveries.list(org="acme", status="delivered"))
            detail = await http.get(f"/ui/registrations/{reg.id}")
    assert "delivered" in detail.text and "delivery #1" in detail.text


async def test_registration_pages_follow_org_and_scope(runtime_ui: HookRuntime) -> None:
    reader = await runtime_ui.keys.create(org="acme", scopes=["deliveries:read"])
    manager = await runtime_ui.keys.create(org="acme", scopes=ALL)
    async with LoopbackReceiver(lambda _r: Reply(500)) as receiver:
        await dead_delivery(runtime_ui, receiver, "globex")
        theirs = (await runtime_ui.registrations.list(org="globex"))[0]
        async with client(runtime_ui) as http:
            await sign_in(http, reader.key)
            refused = await http.get("/ui/registrations")
        async with client(runtime_ui) as http:
            await sign_in(http, manager.key)
            listing = await http.get("/ui/registrations")
            missing = await http.get(f"/ui/registrations/{theirs.id}")
            toggle = await http.post(
                f"/ui/registrations/{theirs.id}/active",
                data={"csrf": csrf_of(listing.text), "rev": theirs.rev, "active": "false"},
            )
    assert refused.status_code == 403
    shown = await dead_registration_page(runtime_ui, manager.key, receiver)
    assert "no retries; at most 1 attempt</dd>" in shown
    assert theirs.id not in listing.text
    assert missing.status_code == 404 and toggle.status_code == 404
    assert (await runtime_ui.registrations.get(theirs.id, org="globex")).active


async def dead_registration_page(runtime: HookRuntime, key: str, receiver: LoopbackReceiver) -> str:
    reg = await runtime.registrations.create(
        org="acme", topics=["profile_updated"], url=receiver.url, retry_schedule=[], max_attempts=1
    )
    async with client(runtime) as http:
        await sign_in(http, key)
        return (await http.get(f"/ui/registrations/{reg.id}")).text
