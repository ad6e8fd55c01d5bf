"""Embedding the API in a host's ASGI app (FastAPI, Starlette, anything with a lifespan).

A mounted app's own lifespan never runs: the server only runs the host's. So the host
passes :func:`lifespan` as its lifespan; it opens the runtime before the first request
and closes it (stopping its delivery workers) at shutdown::

    runtime = HookRuntime.from_env()
    app = FastAPI(lifespan=hookruntime.api.lifespan(runtime))
    app.mount("/hooks", create_app(runtime))

    @app.post("/signup")
    async def signup(runtime: HookRuntime = Depends(get_runtime)) -> dict[str, str]: ...

At startup :func:`lifespan` walks the host's routes, and refuses to start when a mounted
hookruntime app serves a runtime that nothing opens. An app mounted with no such
lifespan at all answers 503 with the fix (:class:`RequireOpen`), never a 500.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from starlette.requests import Request
from starlette.routing import Host, Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import ConfigurationError
from ..runtime import HookRuntime
from .problems import problem

__all__ = ["STATE_KEY", "HostLifespan", "RequireOpen", "get_runtime", "lifespan", "mounted"]

log = logging.getLogger("hookruntime.api")

#: The name under which :func:`lifespan` puts the runtime in the lifespan state, so that
#: every request, mounted apps' included, finds it as ``request.state.hookruntime``.
STATE_KEY = "hookruntime"

HOW_TO_OPEN = (
    "a mounted app's lifespan does not run: give the host app "
    "lifespan=hookruntime.api.lifespan(runtime) to open the runtime at startup"
)

#: A host's own lifespan: called with the host app, it may yield a state mapping or None.
HostLifespan = Callable[[Any], AbstractAsyncContextManager[Mapping[str, Any] | None]]


def lifespan(
    runtime: HookRuntime, *, then: HostLifespan | None = None
) -> Callable[[Any], AbstractAsyncContextManager[dict[str, Any]]]:
    """A lifespan for the host app (``FastAPI(lifespan=…)``, ``Starlette(lifespan=…)``).

    At startup it checks the host's mounts (:func:`mounted`), opens ``runtime``, then runs
    the host's own lifespan ``then`` (if any) with the runtime open; at shutdown it undoes
    both in reverse order. The runtime is in the lifespan state under :data:`STATE_KEY`,
    merged with whatever state ``then`` yields.
    """

    @asynccontextmanager
    async def run(app: Any) -> AsyncIterator[dict[str, Any]]:
        for where, served in mounted(app):
            if served is not runtime and not _is_open(served):
                raise ConfigurationError(
                    f"the hookruntime API mounted at {where!r} serves a HookRuntime that "
                    "nothing opens: pass that same runtime to hookruntime.api.lifespan(…), "
                    "or open it in the host's lifespan before this one"
                )
        async with runtime:
            if then is None:
                yield {STATE_KEY: runtime}
                return
            async with then(app) as host_state:
                yield {**(host_state or {}), STATE_KEY: runtime}

    return run


async def get_runtime(request: Request) -> HookRuntime:
    """The runtime the host's :func:`lifespan` opened: a FastAPI dependency
    (``Depends(get_runtime)``), or awaited from a Starlette endpoint."""
    runtime = getattr(request.state, STATE_KEY, None)
    if not isinstance(runtime, HookRuntime):
        raise ConfigurationError(f"no HookRuntime for this request; {HOW_TO_OPEN}")
    return runtime


def mounted(app: Any, where: str = "") -> Iterator[tuple[str, HookRuntime]]:
    """Every hookruntime app reachable from ``app``'s routes, as (mount path, runtime).

    Follows Mount and Host routes recursively, and middleware that keeps the app it wraps
    in ``.app`` (the ASGI convention), so a host that wraps the API is still checked.
    """
    for route in getattr(app, "routes", None) or ():
        if isinstance(route, Mount):
            yield from _served(route.app, where + route.path)
        elif isinstance(route, Host):
            yield from _served(route.app, f"{route.host}{where}")


def _served(app: Any, where: str) -> Iterator[tuple[str, HookRuntime]]:
    for _ in range(32):  # a bound, in case a wrapper points back at itself
        runtime = getattr(getattr(app, "state", None), "runtime", None)
        if isinstance(runtime, HookRuntime):
            yield where or "/", runtime
            return
        if getattr(app, "routes", None) is not None:
            yield from mounted(app, where)
            return
        app = getattr(app, "app", None)
        if app is None:
            return


def _is_open(runtime: HookRuntime) -> bool:
    return runtime.is_open


class RequireOpen:
    """ASGI middleware of the API app: while its runtime is not open (the app was mounted
    and nothing opened the runtime), every request is answered 503 problem+json with the
    fix, logged once, instead of a 500 per request."""

    def __init__(self, app: ASGIApp, runtime: HookRuntime) -> None:
        self.app, self.runtime = app, runtime
        self.logged = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _is_open(self.runtime):
            await self.app(scope, receive, send)
            return
        where = scope.get("root_path") or "/"
        detail = f"the HookRuntime behind the API at {where} is not open; {HOW_TO_OPEN}"
        if not self.logged:
            self.logged = True
            log.error(detail, extra={"mount": where})
        await problem(503, "Runtime not open", detail)(scope, receive, send)
