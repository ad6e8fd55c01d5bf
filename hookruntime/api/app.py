"""The Starlette application over one :class:`~hookruntime.HookRuntime`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from ..errors import HookRuntimeError
from ..observe import CONTENT_TYPE
from ..runtime import HookRuntime
from ..ui import dashboard_routes
from . import events, registrations, schemas
from .embed import RequireOpen
from .io import require
from .limits import Limiters
from .openapi import Endpoint, openapi, routes_of
from .problems import HTTPProblem, handle_error, handle_problem, handle_unexpected

__all__ = ["ROUTES", "create_app", "routes", "topic_json"]


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


def _runtime(request: Request) -> HookRuntime:
    runtime: HookRuntime = request.app.state.runtime
    return runtime


async def healthz(request: Request) -> Response:
    await _runtime(request).ping()
    return JSONResponse({"status": "ok"})


async def topics(request: Request) -> Response:
    await require(request)
    return JSONResponse({"items": topic_json(_runtime(request))})


async def document(request: Request) -> Response:
    from .. import __version__

    doc, prefix = openapi(__version__, request.app.routes), request.scope.get("root_path", "")
    # Mounted under a prefix, the paths are relative to it; say so to clients.
    return JSONResponse({**doc, "servers": [{"url": prefix}]} if prefix else doc)


async def metrics(request: Request) -> Response:
    observed = _runtime(request).metrics
    if observed is None:
        raise HTTPProblem(404, "Not Found", "metrics are off (HOOKRUNTIME_METRICS=0)")
    return Response(await observed.render(), media_type=CONTENT_TYPE)


#: Every API operation; the app routes by this table and documents it.
ROUTES: list[Endpoint] = [
    Endpoint("/healthz", "GET", healthz, "Liveness and database reachability", None),
    Endpoint("/openapi.json", "GET", document, "This document", None),
    Endpoint(
        "/metrics",
        "GET",
        metrics,
        "Prometheus metrics (text exposition format)",
        None,
        media="text/plain",
    ),
    Endpoint("/v1/topics", "GET", topics, "The catalog of topics", "", answer=schemas.OBJECT),
    *registrations.ROUTES,
    *events.ROUTES,
]


def routes() -> list[BaseRoute]:
    """The app's routes: the API's, the dashboard's and ``/docs``."""
    return [*routes_of(ROUTES), *dashboard_routes()]


def create_app(runtime: HookRuntime, *, manage_lifecycle: bool = True) -> Starlette:
    """The API app. With ``manage_lifecycle`` the app opens and closes ``runtime`` with
    its own lifespan; a host that opens the runtime itself passes False. Each app has
    rate limits of its own, sized by ``runtime.settings``."""

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if not manage_lifecycle:
            yield
            return
        async with runtime:
            yield

    app = Starlette(
        routes=routes(),
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
    app.state.limiters = Limiters.from_settings(runtime.settings)
    return app
