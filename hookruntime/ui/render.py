"""Rendering pages: one Jinja2 environment over the package's templates, small
formatting filters, and the form reader every state-changing view goes through."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from ..errors import ConflictError, HookRuntimeError, NotFoundError, ValidationError
from ..runtime import HookRuntime
from .mount import base_of
from .queries import plausible_id
from .sessions import Forbidden, Session, same

__all__ = [
    "Forbidden",
    "FormError",
    "View",
    "base_of",
    "page",
    "query_string",
    "read_form",
    "redirect",
    "runtime_of",
    "safe",
]

HERE = Path(__file__).parent
MAX_FORM = 64 * 1024


def _when(moment: float | None) -> str:
    if moment is None:
        return "—"
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _ago(moment: float | None) -> str:
    if moment is None:
        return "—"
    return _duration(time.time() - moment) + " ago"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = max(seconds, 0.0)
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _iso_minute(moment: float | None) -> str:
    if moment is None:
        return ""
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M")


def _pretty(raw: Any) -> str:
    """JSON text indented for reading; anything else as is."""
    try:
        value = json.loads(raw) if isinstance(raw, str | bytes) else raw
        return json.dumps(value, indent=2, ensure_ascii=False)
    except ValueError:
        return str(raw)


ENV = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.filters.update(when=_when, ago=_ago, duration=_duration, pretty=_pretty, iso_minute=_iso_minute)


class FormError(HookRuntimeError):
    """A form that cannot be accepted: no or a wrong CSRF token, or too large."""


def runtime_of(request: Request) -> HookRuntime:
    runtime: HookRuntime = request.app.state.runtime
    return runtime


def query_string(**values: Any) -> str:
    kept = {k: v for k, v in values.items() if v not in (None, "")}
    return ("?" + urlencode(kept)) if kept else ""


def page(
    request: Request,
    template: str,
    session: Session | None,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    base = base_of(request)
    path = request.url.path
    html = ENV.get_template(template).render(
        request=request,
        session=session,
        base=base,
        path=path[len(base) :] if path.startswith(base + "/") else path,
        **context,
    )
    return HTMLResponse(
        html,
        status_code=status,
        headers={
            # Pages hold an org's data: never cached, never framed.
            "Cache-Control": "no-store",
            "X-Frame-Options": "DENY",
            "Content-Security-Policy": "default-src 'self'; style-src 'self'; "
            "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
            "Referrer-Policy": "no-referrer",
        },
    )


def redirect(request: Request, path: str) -> RedirectResponse:
    """A 303 to ``path`` (as in ``/ui/…``) under the API's mount point."""
    return RedirectResponse(base_of(request) + path, status_code=303)


async def read_form(request: Request, csrf: str | None) -> dict[str, str]:
    """The urlencoded body, refused unless its ``csrf`` field matches ``csrf``."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_FORM:
            raise FormError("the form is too large")
        chunks.append(chunk)
    try:
        fields = dict(parse_qsl(b"".join(chunks).decode("utf-8"), keep_blank_values=True))
    except (UnicodeDecodeError, ValueError) as exc:
        raise FormError("the form could not be read") from exc
    if not same(fields.get("csrf"), csrf):
        raise FormError("the form's CSRF token is missing or stale; reload the page")
    return fields


View = Callable[[Request, Session], Awaitable[Response]]


def safe(
    handler: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    """Errors as HTML pages with the API's status codes, never a 5xx for bad input."""

    async def endpoint(request: Request) -> Response:
        for value in request.path_params.values():
            if not plausible_id(str(value)):
                return page(request, "error.html", None, 404, title="Not found", detail="")
        try:
            return await handler(request)
        except FormError as exc:
            return page(request, "error.html", None, 403, title="Forbidden", detail=str(exc))
        except Forbidden as exc:
            return page(request, "error.html", None, 403, title="Forbidden", detail=str(exc))
        except NotFoundError as exc:
            return page(request, "error.html", None, 404, title="Not found", detail=str(exc))
        except ConflictError as exc:
            return page(request, "error.html", None, 409, title="Conflict", detail=str(exc))
        except ValidationError as exc:
            return page(request, "error.html", None, 422, title="Invalid input", detail=str(exc))

    return endpoint
