"""The OpenAPI document, built from the routes the app serves.

Each API operation is an :class:`Endpoint`: the handler with what documents it (scope,
body schema, answer, query parameters). The app routes requests by the same objects
(:class:`DocumentedRoute`), so a route cannot exist undocumented, nor a description
without its route; the schemas' bounds are the validation's own constants
(:mod:`.schemas`). Other routes of the app (``/docs``) are described by their path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .schemas import OBJECT, QUERY, TEXT

__all__ = ["DocumentedRoute", "Endpoint", "openapi", "routes_of"]

Handler = Callable[[Request], Awaitable[Response]]

_PROBLEM = {"$ref": "#/components/schemas/Problem"}
_ERRORS = {
    "400": "Malformed JSON",
    "401": "No or bad API key",
    "403": "Missing scope",
    "404": "No such object in this org",
    "409": "Stale rev or conflict",
    "413": "Body too large",
    "415": "Not JSON",
    "422": "Invalid fields",
    "428": "rev required",
    "429": "Rate limited",
}
#: Routes of the app that are not API operations (HTML), by path.
_PAGES = {"/docs": "This document as an interactive page (HTML)"}


@dataclass(frozen=True)
class Endpoint:
    """One operation: ``method`` on ``path`` answered by ``handler``, and its description.

    ``scope`` None: no API key; ``""``: any key; else the scope the key needs.
    ``answer`` is the success body's schema (None: no JSON body), ``media`` another
    media type for it; ``headers`` are optional request headers (name, schema);
    ``also`` documents further successes (status → description).
    """

    path: str
    method: str
    handler: Handler
    summary: str
    scope: str | None = ""
    body: dict[str, Any] | None = None
    body_required: bool = True
    status: int = 200
    answer: dict[str, Any] | None = field(default_factory=lambda: OBJECT)
    media: str | None = None
    query: tuple[str, ...] = ()
    headers: tuple[tuple[str, dict[str, Any]], ...] = ()
    also: tuple[tuple[int, str], ...] = ()

    def operation(self) -> dict[str, Any]:
        operation: dict[str, Any] = {"summary": self.summary, "responses": {}}
        if self.scope is not None:
            operation["security"] = [{"bearer": []}]
            if self.scope:
                operation["description"] = f"Needs the scope `{self.scope}`."
            operation["responses"].update(
                {
                    code: {
                        "description": text,
                        "content": {"application/problem+json": {"schema": _PROBLEM}},
                    }
                    for code, text in _ERRORS.items()
                }
            )
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": TEXT}
            for name in _path_names(self.path)
        ]
        parameters += [
            {"name": q, "in": "query", "required": False, "schema": QUERY.get(q, TEXT)}
            for q in self.query
        ]
        parameters += [
            {"name": name, "in": "header", "required": False, "schema": schema}
            for name, schema in self.headers
        ]
        if parameters:
            operation["parameters"] = parameters
        if self.body is not None:
            operation["requestBody"] = {
                "required": self.body_required,
                "content": {"application/json": {"schema": self.body}},
            }
        success: dict[str, Any] = {"description": "OK"}
        if self.media is not None:
            success["content"] = {self.media: {"schema": {"type": "string"}}}
        elif self.answer is not None:
            success["content"] = {"application/json": {"schema": self.answer}}
        operation["responses"][str(self.status)] = success
        for status, text in self.also:
            operation["responses"][str(status)] = {
                "description": text,
                "content": {"application/json": {"schema": OBJECT}},
            }
        return operation


class DocumentedRoute(Route):
    """A Starlette route serving every :class:`Endpoint` of one path (so that a 405
    lists all the path's methods in Allow), and keeping them for the document."""

    def __init__(self, path: str, endpoints: Sequence[Endpoint]) -> None:
        self.endpoints = {e.method: e for e in endpoints}
        handlers = {e.method: e.handler for e in endpoints}

        async def dispatch(request: Request) -> Response:
            method = "GET" if request.method == "HEAD" else request.method
            return await handlers[method](request)

        super().__init__(path, dispatch, methods=list(handlers))


def routes_of(endpoints: Iterable[Endpoint]) -> list[DocumentedRoute]:
    """One route per path, in the order the paths first appear."""
    by_path: dict[str, list[Endpoint]] = {}
    for endpoint in endpoints:
        by_path.setdefault(endpoint.path, []).append(endpoint)
    return [DocumentedRoute(path, group) for path, group in by_path.items()]


def openapi(version: str, routes: Iterable[BaseRoute]) -> dict[str, Any]:
    """The document of ``routes`` (an app's ``routes``): their operations, and a
    summary for each other route with methods; mounts (the dashboard) are left out."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if isinstance(route, DocumentedRoute):
            for method, endpoint in route.endpoints.items():
                paths.setdefault(route.path, {})[method.lower()] = endpoint.operation()
        elif isinstance(route, Route) and route.methods:
            summary = _PAGES.get(route.path, route.path)
            for method in sorted(route.methods - {"HEAD"}):
                paths.setdefault(route.path, {})[method.lower()] = {
                    "summary": summary,
                    "responses": {"200": {"description": "OK"}},
                }
    return {
        "openapi": "3.1.0",
        "info": {"title": "hookruntime", "version": version},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Problem": {
                    "type": "object",
                    "required": ["type", "title", "status", "detail"],
                    "properties": {
                        "type": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string"},
                        "errors": {"type": "array", "items": OBJECT},
                    },
                }
            },
        },
    }


def _path_names(path: str) -> list[str]:
    return [part[1:-1].split(":")[0] for part in path.split("/") if part.startswith("{")]
