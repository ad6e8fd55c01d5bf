"""Where the API is mounted. A host may mount it under a prefix
(``app.mount("/hooks", create_app(runtime))``): every link, form action, redirect and
cookie path of the dashboard, and the reference's fetches, start with that prefix."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import BaseRoute, Router
from starlette.types import Receive, Scope, Send

__all__ = ["UI", "Prefixed", "base_of", "cookie_path"]

UI = "/ui"
#: Set on the scope of every request under ``/ui``: the API's own mount point.
_BASE = "hookruntime.base"


class Prefixed:
    """The routes under ``/ui``. The ``/ui`` mount has already appended itself to the
    scope's ``root_path``; what came before it is the API's mount point."""

    def __init__(self, routes: list[BaseRoute]) -> None:
        self.router = Router(routes)

    @property
    def routes(self) -> list[BaseRoute]:
        return self.router.routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        root = str(scope.get("root_path", ""))
        await self.router({**scope, _BASE: root.removesuffix(UI)}, receive, send)


def base_of(request: Request) -> str:
    """The API's mount point: "" at the root, "/hooks" under a host's ``mount``."""
    return str(request.scope.get(_BASE, request.scope.get("root_path", "")))


def cookie_path(request: Request) -> str:
    return base_of(request) + UI
