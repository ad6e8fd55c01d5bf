"""``/docs``: an interactive API reference. The page is a shell; its bundled script reads
``/openapi.json`` and renders every operation with a "try it" form, so the reference
follows the document whatever produces it. Nothing is fetched from another origin."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from .render import page

__all__ = ["docs"]


async def docs(request: Request) -> Response:
    return page(request, "docs.html", None)
