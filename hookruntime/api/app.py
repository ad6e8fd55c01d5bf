"""The Starlette application over one :class:`~hookruntime.HookRuntime`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..errors import HookRuntimeError
from ..observe import CONTENT_TYPE
from ..runtime import HookRuntime
from ..ui import dashboard_routes
from . import events, registrations
from .embed import RequireOpen
from .io import require
from .openapi import openapi
from .problems import HTTPProblem, handle_error, handle_problem, handle_unexpected

__all__ = ["create_app", "topic_json"]


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


def _dispatch(handlers: dict[str, Any]) -> Any:
    async def endpoint(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        response: Response = await handlers[method](request)
        return response

    return endpoint


def create_app(runtime: HookRuntime, *, manage_lifecycle: bool = True) -> Starlette:
    """The API app. With ``manage_lifecycle`` the app opens and closes ``runtime`` with
    its own lifespan; a host that opens the runtime itself passes False."""
    from .. import __version__

    async def healthz(_request: Request) -> Response:
        await runtime.database.ping()
        return JSONResponse({"status": "ok"})

    async def topics(request: Request) -> Response:
        await require(request)
        return JSONResponse({"items": topic_json(runtime)})

    async def document(request: Request) -> Response:
        doc, prefix = openapi(__version__), request.scope.get("root_path", "")
        # Mounted under a prefix, the paths are relative to it; say so to clients.
        return JSONResponse({**doc, "servers": [{"url": prefix}]} if prefix else doc)

    async def metrics(_request: Request) -> Response:
        if runtime.metrics is None:
            raise HTTPProblem(404, "Not Found", "metrics are off (HOOKRUNTIME_METRICS=0)")
        return Response(await runtime.metrics.render(), media_type=CONTENT_TYPE)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if not manage_lifecycle:
            yield
            return
        async with runtime:
            yield

    table = [
        ("/healthz", "GET", healthz),
        ("/openapi.json", "GET", document),
        ("/metrics", "GET", metrics),
        ("/v1/topics", "GET", topics),
        *registrations.ROUTES,
        *events.ROUTES,
    ]
    # One Route per path, so that a 405 lists every method the path supports in Allow.
    by_path: dict[str, dict[str, Any]] = {}
    for path, method, handler in table:
        by_path.setdefault(path, {})[method] = handler
    routes = [
        Route(path, _dispatch(handlers), methods=list(handlers))
        for path, handlers in by_path.items()
    ]
    app = Starlette(
        routes=[*routes, *dashboard_routes()],
        exception_handlers={
            HookRuntimeError: handle_error,
            HTTPProblem: handle_problem,
            # A bug, not bad input: still a 500, but a problem document, and logged.
            Exception: handle_unexpected,
        },
        # Mounted without hookruntime.api.lifespan: a 503 that says so, not a 500 per request.
        middleware=[Middleware(RequireOpen, runtime=runtime)],
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    return app
