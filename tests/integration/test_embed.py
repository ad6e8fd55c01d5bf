"""The API mounted in a host's ASGI app, served by a real uvicorn on 127.0.0.1: the host's
lifespan opens and closes the runtime, a dependency reaches it, and a wrong mount fails
at startup (or, with no helper at all, answers 503, never 500)."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import anyio
import httpx
import pytest
import uvicorn
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from hookruntime import HookRuntime, HookRuntimeError
from hookruntime.api import create_app, get_runtime, lifespan
from hookruntime.testing import LoopbackReceiver, Reply, eventually

pytestmark = pytest.mark.anyio


class Served:
    def __init__(self, app: Any, sock: socket.socket) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_config=None))
        self.thread = threading.Thread(target=self.run, args=(sock,), daemon=True)
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self.exit_code: object = None

    def run(self, sock: socket.socket) -> None:
        try:
            self.server.run(sockets=[sock])
        except SystemExit as exc:  # uvicorn's answer to a failed startup
            self.exit_code = exc.code


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[Served]:
    """``app`` under uvicorn (lifespan on) in a thread, on a free loopback port; waits for
    startup (its lifespan included) and, on exit, for a full shutdown."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    served = Served(app, sock)
    served.thread.start()
    try:
        with anyio.fail_after(30):
            # uvicorn sets `started` in its own thread; no event to await across threads.
            while not served.server.started and served.thread.is_alive():  # noqa: ASYNC110
                await anyio.sleep(0.02)
        yield served
    finally:
        served.server.should_exit = True
        await anyio.to_thread.run_sync(served.thread.join, 30)
        sock.close()


async def prepared(path: Path, rx: LoopbackReceiver, topics: list[str]) -> str:
    """An API key and a registration to ``rx``, written before the host starts (as the
    CLI would), so that the host's runtime opens on a database that already holds them."""
    async with runtime_on(path) as setup:
        key = await setup.keys.create(org="acme", scopes=["webhooks:manage"])
        await setup.registrations.create(org="acme", topics=topics, url=rx.url, profile="standard")
    return key.key


def runtime_on(path: Path, workers: int = 0) -> HookRuntime:
    return HookRuntime(f"sqlite:///{path}", workers=workers, allow_private_targets=True)


def assert_closed(runtime: HookRuntime) -> None:
    with pytest.raises(HookRuntimeError, match="not open"):
        runtime.database  # noqa: B018


async def test_fastapi_host_mounts_the_api_and_its_lifespan_opens_and_closes_the_runtime(
    tmp_path: Path,
) -> None:
    async with LoopbackReceiver() as rx:
        key = await prepared(tmp_path / "hooks.db", rx, ["profile_updated"])
        runtime = runtime_on(tmp_path / "hooks.db", workers=1)
        app = FastAPI(lifespan=lifespan(runtime))
        app.mount("/hooks", create_app(runtime))

        @app.post("/profiles/{user}")
        async def update(
            user: str, hooks: Annotated[HookRuntime, Depends(get_runtime)]
        ) -> dict[str, str]:
            event = await hooks.emit("profile_updated", {"id": user}, org="acme", key=user)
            return {"event": event}

        async with serving(app) as served, httpx.AsyncClient(base_url=served.url) as client:
            health = await client.get("/hooks/healthz")
            auth = {"Authorization": f"Bearer {key}"}
            topics = await client.get("/hooks/v1/topics", headers=auth)
            emitted = await client.post("/profiles/u1")
            # Delivered by the worker the host's lifespan started in this process.
            await eventually(lambda: rx.received)
        assert health.status_code == 200 and health.json() == {"status": "ok"}
        assert topics.status_code == 200 and topics.json()["items"]
        assert emitted.status_code == 200
        assert rx.received[0].headers["webhook-id"] == emitted.json()["event"]
        assert not served.thread.is_alive()
        assert_closed(runtime)


async def test_starlette_host_mounts_the_api_and_runs_its_own_lifespan_inside(
    tmp_path: Path,
) -> None:
    deny = {"decision": "deny", "reason": "locked"}
    async with LoopbackReceiver(lambda _request: Reply.json(deny)) as rx:
        await prepared(tmp_path / "hooks.db", rx, ["user_logged_in"])
        runtime = runtime_on(tmp_path / "hooks.db")
        seen: list[str] = []

        @asynccontextmanager
        async def host_lifespan(_app: Starlette) -> AsyncIterator[dict[str, Any]]:
            # The host's own start-up runs with the runtime already open.
            seen.append(runtime.database.dialect)
            yield {"greeting": "hello"}
            seen.append("host closed")

        async def login(request: Request) -> JSONResponse:
            hooks = await get_runtime(request)
            result = await hooks.call("user_logged_in", {"id": "u1"}, org="acme", deadline=2)
            return JSONResponse({"allowed": result.allowed, "greeting": request.state.greeting})

        app = Starlette(
            routes=[Route("/login", login, methods=["POST"]), Mount("/hooks", create_app(runtime))],
            lifespan=lifespan(runtime, then=host_lifespan),
        )
        async with serving(app) as served, httpx.AsyncClient(base_url=served.url) as client:
            health = await client.get("/hooks/healthz")
            login_answer = await client.post("/login")
        assert health.status_code == 200
        assert login_answer.json() == {"allowed": False, "greeting": "hello"}
        assert seen == ["sqlite", "host closed"]
        assert_closed(runtime)


async def test_a_host_mounting_a_runtime_nothing_opens_refuses_to_start_and_names_the_mount(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    opened, forgotten = runtime_on(tmp_path / "a.db"), runtime_on(tmp_path / "b.db")
    inner = Starlette(routes=[Mount("/hooks", create_app(forgotten))])
    app = FastAPI(lifespan=lifespan(opened), middleware=[Middleware(GZipMiddleware)])
    app.mount("/api", GZipMiddleware(inner))
    with caplog.at_level(logging.ERROR):
        async with serving(app) as served:
            pass
    assert not served.server.started and served.exit_code == 3
    assert "mounted at '/api/hooks' serves a HookRuntime that nothing opens" in caplog.text
    assert "hookruntime.api.lifespan" in caplog.text
    assert_closed(opened)  # refused before opening anything


async def test_a_mounted_runtime_the_host_opened_itself_is_accepted(tmp_path: Path) -> None:
    own, other = runtime_on(tmp_path / "a.db"), runtime_on(tmp_path / "b.db")
    app = FastAPI(lifespan=lifespan(own))
    app.mount("/other", create_app(other))
    async with other:
        async with lifespan(own)(app) as state:
            assert state == {"hookruntime": own}
        assert_closed(own)


async def test_the_mounted_openapi_document_names_the_prefix_as_its_server(
    tmp_path: Path,
) -> None:
    runtime = runtime_on(tmp_path / "hooks.db")
    app = FastAPI(lifespan=lifespan(runtime))
    app.mount("/hooks", create_app(runtime))
    async with serving(app) as served, httpx.AsyncClient(base_url=served.url) as client:
        document = (await client.get("/hooks/openapi.json")).json()
    assert document["servers"] == [{"url": "/hooks"}]
    assert "/v1/events" in document["paths"]


async def test_mounted_without_the_helper_answers_503_with_the_fix_not_500(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = runtime_on(tmp_path / "hooks.db")
    app = FastAPI()
    app.mount("/hooks", create_app(runtime))
    with caplog.at_level(logging.ERROR, logger="hookruntime.api"):
        async with serving(app) as served, httpx.AsyncClient(base_url=served.url) as client:
            answers = [
                await client.get("/hooks/healthz"),
                await client.get("/hooks/v1/topics", headers={"Authorization": "Bearer hrk_x"}),
                await client.post("/hooks/v1/events", json={"topic": "profile_updated"}),
            ]
    for answer in answers:
        assert answer.status_code == 503
        assert answer.headers["content-type"] == "application/problem+json"
        assert "lifespan=hookruntime.api.lifespan(runtime)" in answer.json()["detail"]
        assert "/hooks" in answer.json()["detail"]
    logged = [r for r in caplog.records if r.name == "hookruntime.api"]
    assert len(logged) == 1  # once, not per request
