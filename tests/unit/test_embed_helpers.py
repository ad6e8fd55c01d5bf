"""Embedding helpers: finding the API mounted in a host's app, and the lifespan helper, without
serving anything."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Host, Mount, Route, Router

from hookruntime import HookRuntime, HookRuntimeError
from hookruntime.api import create_app, get_runtime, lifespan
from hookruntime.api.embed import mounted

pytestmark = pytest.mark.anyio


def runtime_on(path: Path, workers: int = 0) -> HookRuntime:
    return HookRuntime(f"sqlite:///{path}", workers=workers, allow_private_targets=True)


def test_the_walk_finds_the_api_behind_hosts_routers_and_middleware(tmp_path: Path) -> None:
    runtime = runtime_on(tmp_path / "hooks.db")
    api = GZipMiddleware(create_app(runtime))
    app = Starlette(
        routes=[
            Route("/", lambda _request: JSONResponse({})),
            Host("api.example.com", app=Router([Mount("/v2", routes=[Mount("/hooks", api)])])),
        ]
    )
    assert list(mounted(app)) == [("api.example.com/v2/hooks", runtime)]


async def test_get_runtime_without_the_helper_says_how_to_open_it() -> None:
    request = Request({"type": "http", "state": {}})
    with pytest.raises(HookRuntimeError, match=r"lifespan=hookruntime\.api\.lifespan\(runtime\)"):
        await get_runtime(request)


def test_the_helper_is_accepted_as_lifespan_by_both_frameworks() -> None:
    runtime: Callable[..., Any] = lifespan(HookRuntime("sqlite:///unused.db", workers=0))
    assert FastAPI(lifespan=runtime).router.lifespan_context is not None
    assert Starlette(lifespan=runtime).router.lifespan_context is not None
