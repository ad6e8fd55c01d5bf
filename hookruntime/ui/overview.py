"""Placeholder overview, replaced below."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from .render import page
from .sessions import Session


async def overview(request: Request, session: Session) -> Response:
    return page(request, "error.html", session, title="Overview", detail="")
