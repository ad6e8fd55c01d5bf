"""The dashboard in real headless Chromium (Debian's package) against a real uvicorn
server: sign in, find a dead delivery, open its attempts, replay it, see it delivered,
and meet a 404 on another org's delivery."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import uvicorn

from hookruntime import HookRuntime
from hookruntime.api import create_app
from hookruntime.testing import LoopbackReceiver, Received, Reply, eventually

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ALL = ["webhooks:manage", "events:emit", "hooks:call", "deliveries:read"]

NO_CHROMIUM = "needs Debian's chromium (.ci/run installs it)"
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=NO_CHROMIUM)


@dataclass
class Site:
    url: str = ""
    key: str = ""
    dead: str = ""
    foreign: str = ""
    succeed: threading.Event = field(default_factory=threading.Event)
    ready: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None
    server: uvicorn.Server | None = None


async def _dead(runtime: HookRuntime, org: str, url: str) -> str:
    await runtime.registrations.create(
        org=org, topics=["profile_updated"], url=url, retry_schedule=[], max_attempts=1
    )
    event_id = await runtime.emit("profile_updated", {"id": f"{org}-user"}, org=org)

    async def dead() -> str | None:
        found = await runtime.deliveries.list(org=org, event_id=event_id, status="dead")
        return found[0].id if found else None

    return await eventually(dead)


async def _serve(site: Site, database: Path) -> None:
    def answer(_request: Received) -> Reply:
        return Reply(200) if site.succeed.is_set() else Reply(503, b'{"error":"down"}')

    async with (
        LoopbackReceiver(answer) as receiver,
        HookRuntime(f"sqlite:///{database}", allow_private_targets=True, workers=1) as runtime,
    ):
        site.key = (await runtime.keys.create(org="acme", scopes=ALL)).key
        site.dead = await _dead(runtime, "acme", receiver.url)
        site.foreign = await _dead(runtime, "globex", receiver.url)
        config = uvicorn.Config(
            create_app(runtime, manage_lifecycle=False),
            host="127.0.0.1",
            port=0,
            log_level="warning",
            lifespan="off",
        )
        site.server = server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve())
        await eventually(lambda: server.started)
        port = server.servers[0].sockets[0].getsockname()[1]
        site.url = f"http://127.0.0.1:{port}"
        site.ready.set()
        await serving


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    site = Site()

    def run() -> None:
        try:
            asyncio.run(_serve(site, tmp_path / "browser.db"))
        except BaseException as exc:
            site.error = exc
            site.ready.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert site.ready.wait(60), "the server did not start"
    if site.error is not None:
        raise site.error
    yield site
    assert site.server is not None
    site.server.should_exit = True
    thread.join(30)


def test_operator_replays_a_dead_delivery_in_a_real_browser(site: Site, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{site.url}/ui/")
            page.fill("#key", site.key)
            page.click("button[type=submit]:has-text('Sign in')")
            expect(page.locator("nav")).to_contain_text("Deliveries")
            assert site.key not in page.url
            page.screenshot(path=str(tmp_path / "overview.png"), full_page=True)

            page.click("nav >> text=Deliveries")
            page.select_option("select[name=status]", "dead")
            page.click("button:has-text('Filter')")
            page.click(f"a:has-text('{site.dead}')")
            expect(page.locator("#delivery-status")).to_have_text("dead")
            expect(page.locator(".attempt")).to_contain_text("HTTP 503")
            page.screenshot(path=str(tmp_path / "delivery.png"), full_page=True)

            site.succeed.set()
            page.click("#retry")
            expect(page.locator(".notice")).to_contain_text("Retry queued")
            # No reload: the page's live refresh shows the new state by itself.
            expect(page.locator("#delivery-status")).to_have_text("delivered", timeout=20_000)
            expect(page.locator(".attempt")).to_have_count(2)

            response = page.goto(f"{site.url}/ui/deliveries/{site.foreign}")
            assert response is not None and response.status == 404
        finally:
            browser.close()
    assert (tmp_path / "overview.png").stat().st_size > 0
    assert (tmp_path / "delivery.png").stat().st_size > 0


def test_docs_render_every_operation_and_try_one(site: Site) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            page = browser.new_page()
            outside: list[str] = []
            page.on(
                "request",
                lambda r: None if r.url.startswith(site.url) else outside.append(r.url),
            )
            page.goto(f"{site.url}/docs")
            expect(page.locator("#operations[data-ready=true]")).to_be_visible()
            assert page.locator(".operation").count() >= 15
            topics = page.locator(".operation[data-path='/v1/topics'][data-method=get]")
            topics.locator("summary").click()
            page.fill("#docs-key", site.key)
            topics.locator("button:has-text('Try it')").click()
            expect(topics.locator(".result")).to_contain_text("200")
            expect(topics.locator(".result")).to_contain_text("profile_updated")
            assert outside == []
        finally:
            browser.close()


def test_dashboard_works_with_javascript_off(site: Site) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            page = browser.new_context(java_script_enabled=False).new_page()
            page.goto(f"{site.url}/ui/")
            page.fill("#key", site.key)
            page.click("button[type=submit]:has-text('Sign in')")
            page.goto(f"{site.url}/ui/deliveries")
            page.select_option("select[name=status]", "dead")
            page.click("button:has-text('Filter')")
            expect(page.locator(f"a:has-text('{site.dead}')")).to_be_visible()
            page.click("a:has-text('Retry all matching')")
            expect(page.locator("#match-count")).to_have_text("1")
            page.click("button:has-text('Retry them')")
            expect(page.locator("#job-progress")).to_contain_text("1 of 1")
            page.click("button:has-text('Sign out')")
            expect(page.locator("#key")).to_be_visible()
        finally:
            browser.close()
