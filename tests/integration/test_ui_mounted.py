"""The dashboard and ``/docs`` with the API mounted under a prefix in a FastAPI host
(``app.mount("/hooks", …)`` with ``hookruntime.api.lifespan``), served by a real uvicorn
on 127.0.0.1: every link, form, redirect and cookie stays under the prefix."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from hookruntime import HookRuntime
from hookruntime.api import create_app, lifespan
from hookruntime.testing import LoopbackReceiver, Reply, eventually

pytestmark = pytest.mark.anyio
ALL = ["webhooks:manage", "events:emit", "hooks:call", "deliveries:read"]
# A link, form action or script left at the root would escape the mount.
UNPREFIXED = re.compile(r'(?:href|action|src)="/(?:ui|docs|openapi)')


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """``app`` under uvicorn (lifespan on) in a thread, on a free loopback port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_config=None))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        with anyio.fail_after(30):
            while not server.started and thread.is_alive():  # noqa: ASYNC110
                await anyio.sleep(0.02)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await anyio.to_thread.run_sync(thread.join, 30)
        sock.close()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None, "the page has no CSRF field"
    return found.group(1)


def prefixed(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    assert not UNPREFIXED.findall(response.text)
    return response.text


async def test_dashboard_and_docs_work_under_a_hosts_mount_prefix(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hooks.db'}"
    answers = iter([Reply(500)])
    async with LoopbackReceiver(lambda _r: next(answers, Reply(200))) as rx:
        async with HookRuntime(url, workers=0, allow_private_targets=True) as setup:
            key = (await setup.keys.create(org="acme", scopes=ALL)).key
            await setup.registrations.create(
                org="acme",
                topics=["profile_updated"],
                url=rx.url,
                profile="standard",
                retry_schedule=[],
                max_attempts=1,
            )
        runtime = HookRuntime(url, workers=1, allow_private_targets=True)
        app = FastAPI(lifespan=lifespan(runtime))
        app.mount("/hooks", create_app(runtime))
        async with serving(app) as base, httpx.AsyncClient(base_url=base) as http:
            emitted = await http.post(
                "/hooks/v1/events",
                json={"topic": "profile_updated", "data": {"id": "u1"}},
                headers={"Authorization": f"Bearer {key}"},
            )
            assert emitted.status_code == 202

            form = await http.get("/hooks/ui/")
            assert 'action="/hooks/ui/signin"' in prefixed(form)
            assert 'href="/hooks/ui/static/ui.css"' in form.text
            signed_in = await http.post(
                "/hooks/ui/signin", data={"csrf": csrf_of(form.text), "key": key}
            )
            assert signed_in.status_code == 303
            assert signed_in.headers["location"] == "/hooks/ui/"
            cookie = next(
                v
                for k, v in signed_in.headers.multi_items()
                if k == "set-cookie" and "session" in v
            )
            assert "path=/hooks/ui" in cookie.lower()
            assert 'href="/hooks/ui/deliveries"' in prefixed(await http.get("/hooks/ui/"))

            async def dead() -> str | None:
                listing = prefixed(await http.get("/hooks/ui/deliveries?status=dead"))
                found = re.search(r'href="/hooks/ui/deliveries/(dlv_[^"]+)"', listing)
                return found.group(1) if found else None

            delivery_id = await eventually(dead)
            detail = prefixed(await http.get(f"/hooks/ui/deliveries/{delivery_id}"))
            assert f'action="/hooks/ui/deliveries/{delivery_id}/retry"' in detail
            retried = await http.post(
                f"/hooks/ui/deliveries/{delivery_id}/retry", data={"csrf": csrf_of(detail)}
            )
            assert retried.status_code == 303
            assert retried.headers["location"] == f"/hooks/ui/deliveries/{delivery_id}?retried=1"
            await eventually(lambda: len(rx.received) == 2)

            static = await http.get("/hooks/ui/static/docs.js")
            docs = prefixed(await http.get("/hooks/docs"))
            document = await http.get("/hooks/openapi.json")
        assert static.status_code == 200 and 'base + "/openapi.json"' in static.text
        assert 'data-base="/hooks"' in docs
        assert 'src="/hooks/ui/static/docs.js"' in docs
        assert document.status_code == 200 and "/v1/events" in document.json()["paths"]
