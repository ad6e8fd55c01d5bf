"""The Starlette application over one :class:`~hookruntime.HookRuntime`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..errors import HookRuntimeError
from ..runtime import HookRuntime
from .auth import authenticate
from .problems import handle_error

__all__ = ["create_app"]


def topic_json(runtime: HookRuntime) -> list[dict[str, Any]]:
    return [
        {
            "name": t.name,
            "mode": t.mode,
            "plugin": t.plugin,
            "scopes": list(t.scopes),
            "description": t.description,
            "profile": t.profile,
            "deadline": t.deadline,
            "on_failure": t.on_failure if t.blocking else None,
            "reserved": list(t.reserved),
            "schema": t.schema,
            "sample": t.sample,
        }
        for t in runtime.catalog.values()
    ]


def create_app(runtime: HookRuntime, *, manage_lifecycle: bool = True) -> Starlette:
    """The API app. With ``manage_lifecycle`` the app opens and closes ``runtime`` with
    its own lifespan; a host that opens the runtime itself passes False."""

    async def healthz(_request: Request) -> Response:
        await runtime.database.ping()
        return JSONResponse({"status": "ok"})

    async def topics(request: Request) -> Response:
        key = await authenticate(request, runtime)
        if isinstance(key, Response):
            return key
        return JSONResponse({"items": topic_json(runtime)})

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if not manage_lifecycle:
            yield
            return
        async with runtime:
            yield

    return Starlette(
        routes=[Route("/healthz", healthz), Route("/v1/topics", topics)],
        exception_handlers={HookRuntimeError: handle_error},
        lifespan=lifespan,
    )
