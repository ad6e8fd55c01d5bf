"""examples/sso_service end to end over HTTP: a person signs in at the local OpenID
provider (uvicorn on 127.0.0.1), comes back to the service (httpx against the ASGI
app), and the identity hooks' receivers on loopback allow, deny or patch."""

from __future__ import annotations

import socket
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anyio
import httpx
import pytest
import uvicorn
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from hookruntime import HookRuntime
from hookruntime.receiver import verify
from hookruntime.testing import LoopbackReceiver, Received, Reply, eventually

sys.path.insert(0, str(Path(__file__).parents[2] / "examples"))
from sso_service.app import create_app, served
from sso_service.models import Account, Base, host_url
from sso_service.provider import Client, Provider, User

pytestmark = pytest.mark.anyio
SECRET = "signature_secret"
ORG = "acme"
SERVICE = "http://sso.test"
ALICE = User("u-alice", "alice", "alice-pw", "alice@example.com", "Alice", "Liddell")


@pytest.fixture
def workers() -> int:
    return 0  # delivery only where a test waits for it (see test_workflow)


@pytest.fixture
async def runtime(database_url: str, master_key: str, workers: int) -> AsyncIterator[HookRuntime]:
    async with HookRuntime(
        database_url, workers=workers, master_key=master_key, allow_private_targets=True
    ) as opened:
        yield opened


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(host_url(database_url))
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield engine
    await engine.dispose()


@pytest.fixture
async def provider() -> AsyncIterator[Provider]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    issuer = f"http://127.0.0.1:{listener.getsockname()[1]}"
    client = Client("sso-service", "client-secret", (f"{SERVICE}/auth",))
    opened = Provider(issuer, [client], [ALICE])
    server = uvicorn.Server(uvicorn.Config(opened.app(), log_level="warning"))
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(server.serve, [listener])
        await eventually(lambda: server.started)
        yield opened
        server.should_exit = True


@pytest.fixture
async def browser(
    runtime: HookRuntime, engine: AsyncEngine, provider: Provider
) -> AsyncIterator[httpx.AsyncClient]:
    """One person's browser: the service over ASGI, with the session cookie kept."""
    app = create_app(
        runtime,
        engine,
        org=ORG,
        issuer=provider.issuer,
        client_id="sso-service",
        client_secret="client-secret",
        session_secret="test-session-secret",
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=SERVICE) as c:
        yield c


async def sign_in(browser: httpx.AsyncClient, password: str = "alice-pw") -> httpx.Response:
    """Follow the redirects a browser would: service → provider's form → service."""
    start = await browser.get("/login")
    assert start.status_code == 302, start.text
    async with httpx.AsyncClient() as idp:
        form = await idp.get(start.headers["location"])
        assert form.status_code == 200 and "<form" in form.text
        answer = await idp.post(
            start.headers["location"], data={"username": "alice", "password": password}
        )
    if answer.status_code != 302:
        return answer
    back = httpx.URL(answer.headers["location"])
    assert str(back).startswith(f"{SERVICE}/auth?")
    return await browser.get(back.raw_path.decode())


async def subscribe(
    runtime: HookRuntime, topic: str, answer: Callable[[Received], Reply] | None = None
) -> LoopbackReceiver:
    rx = LoopbackReceiver(answer)
    await rx.start()
    await runtime.registrations.create(
        org=ORG, topics=[topic], url=rx.url, secret=SECRET, retry_schedule=[0.05] * 3
    )
    return rx


async def accounts(engine: AsyncEngine) -> int:
    async with AsyncSession(engine) as session:
        return int((await session.execute(select(func.count()).select_from(Account))).scalar_one())


async def test_first_sign_in_registers_then_logs_in_and_later_ones_only_log_in(
    runtime: HookRuntime, engine: AsyncEngine, browser: httpx.AsyncClient
) -> None:
    registered = await subscribe(
        runtime, "user_registered", lambda _r: Reply.json({"patch": {"lastName": "Pleasance"}})
    )
    logged_in = await subscribe(
        runtime, "user_logged_in", lambda _r: Reply.json({"patch": {"userFields": [{"t": "g"}]}})
    )
    try:
        response = await sign_in(browser)
        assert response.status_code == 303, response.text
        claims = (await browser.get("/me")).json()
        assert claims["email"] == "alice@example.com"
        assert claims["lastName"] == "Pleasance"  # user_registered's patch, kept in the account
        assert claims["userFields"] == [{"t": "g"}]  # user_logged_in's patch, in the session
        assert claims["sso"]["sub"] == "u-alice"
        seen = verify("jws", logged_in.received[0].headers, logged_in.received[0].body, SECRET)
        assert seen.payload["lastName"] == "Pleasance"

        await browser.post("/logout", data={"csrf": "wrong"})  # refused: still signed in
        assert (await browser.get("/me")).status_code == 200
        assert (await sign_in(browser)).status_code == 303

        assert len(registered.received) == 1
        assert len(logged_in.received) == 2
        assert await accounts(engine) == 1
    finally:
        await registered.stop()
        await logged_in.stop()


async def test_denied_sign_in_shows_user_message_and_signs_nobody_in(
    runtime: HookRuntime, engine: AsyncEngine, browser: httpx.AsyncClient
) -> None:
    deny = {"decision": "deny", "reason": "suspended", "user_message": "Your access is paused."}
    logged_in = await subscribe(runtime, "user_logged_in", lambda _r: Reply.json(deny))
    try:
        response = await sign_in(browser)
        assert response.status_code == 403
        assert "Your access is paused." in response.text
        assert "suspended" not in response.text  # the reason is for logs, not for the person
        assert (await browser.get("/me")).status_code == 401
        assert await accounts(engine) == 1  # registration was allowed; the login was not
    finally:
        await logged_in.stop()


async def test_denied_registration_creates_no_account(
    runtime: HookRuntime, engine: AsyncEngine, browser: httpx.AsyncClient
) -> None:
    deny = {"decision": "deny", "user_message": "Ask your admin for an invitation."}
    registered = await subscribe(runtime, "user_registered", lambda _r: Reply.json(deny))
    logged_in = await subscribe(runtime, "user_logged_in")
    try:
        response = await sign_in(browser)
        assert response.status_code == 403
        assert "Ask your admin for an invitation." in response.text
        assert await accounts(engine) == 0
        assert logged_in.received == []
    finally:
        await registered.stop()
        await logged_in.stop()


async def test_wrong_password_stays_at_the_provider_and_calls_no_hook(
    runtime: HookRuntime, browser: httpx.AsyncClient
) -> None:
    logged_in = await subscribe(runtime, "user_logged_in")
    try:
        response = await sign_in(browser, password="guess")
        assert response.status_code == 401
        assert "wrong password" in response.text
        assert logged_in.received == []
    finally:
        await logged_in.stop()


@pytest.mark.parametrize("workers", [1])
async def test_profile_edit_is_saved_and_delivered_as_profile_updated(
    runtime: HookRuntime, engine: AsyncEngine, browser: httpx.AsyncClient
) -> None:
    updated = await subscribe(runtime, "profile_updated")
    try:
        assert (await sign_in(browser)).status_code == 303
        page = (await browser.get("/")).text
        csrf = page.split("name='csrf' value='")[1].split("'")[0]

        forged = await browser.post("/profile", data={"firstName": "Eve", "lastName": "X"})
        assert forged.status_code == 403
        edit = {"csrf": csrf, "firstName": "Alicia", "lastName": "Liddell"}
        assert (await browser.post("/profile", data=edit)).status_code == 303

        claims = (await browser.get("/me")).json()
        assert (claims["firstName"], claims["rev"]) == ("Alicia", "2")
        await eventually(lambda: updated.received)
        profile = verify("jws", updated.received[0].headers, updated.received[0].body, SECRET)
        assert profile.payload["firstName"] == "Alicia"
        assert profile.payload["email"] == "alice@example.com"
        assert profile.payload["rev"] == "2"
        assert len(await runtime.deliveries.list(org=ORG, topic="profile_updated")) == 1
    finally:
        await updated.stop()


async def test_served_service_opens_hookruntime_in_its_lifespan_and_mounts_its_dashboard(
    tmp_path: Path, provider: Provider
) -> None:
    from test_ui_mounted import serving

    url = f"sqlite:///{tmp_path / 'sso.db'}"
    app = served(
        url,
        org=ORG,
        issuer=provider.issuer,
        client_id="sso-service",
        client_secret="client-secret",
        session_secret="test-session-secret",
    )
    async with serving(app) as base, httpx.AsyncClient(base_url=base) as http:
        home = await http.get("/")
        health = await http.get("/hooks/healthz")
        dashboard = await http.get("/hooks/ui/")
    assert home.status_code == 200 and "/login" in home.text
    assert health.status_code == 200
    assert 'action="/hooks/ui/signin"' in dashboard.text
    engine = create_async_engine(host_url(url))
    async with AsyncSession(engine) as session:  # the service's table was created
        assert await session.scalar(select(func.count()).select_from(Account)) == 0
    await engine.dispose()
