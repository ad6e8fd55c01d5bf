"""The topic catalog: each topic's mode, scopes, defaults, schema and sample."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from .render import page, runtime_of
from .sessions import Session

__all__ = ["topics"]


async def topics(request: Request, session: Session) -> Response:
    catalog = runtime_of(request).catalog
    return page(request, "topics.html", session, topics=[catalog[n] for n in sorted(catalog)])
