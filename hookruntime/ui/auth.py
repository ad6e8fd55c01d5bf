"""Signing in and out with an API key, and the guard every dashboard page sits behind.

The key travels only in the sign-in form's POST body: never in a URL, a redirect or a
log line. The sign-in form is protected by a double-submit token in its own cookie.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from .mount import cookie_path
from .render import Forbidden, page, read_form, redirect, runtime_of, safe
from .sessions import COOKIE, LOGIN_COOKIE, Session, SessionStore, set_cookie

__all__ = ["Guard", "signin_page"]

log = logging.getLogger("hookruntime.ui")
SessionView = Callable[[Request, Session], Awaitable[Response]]


def signin_page(request: Request, status: int = 200, error: str | None = None) -> Response:
    token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)
    response = page(request, "signin.html", None, status, csrf=token, error=error)
    set_cookie(request, response, LOGIN_COOKIE, token)
    return response


class Guard:
    """Holds the sessions; wraps views so that they run only for a signed-in key with
    the scope they need."""

    def __init__(self) -> None:
        self.sessions = SessionStore()

    def __call__(
        self, scope: str | None = None
    ) -> Callable[[SessionView], Callable[..., Awaitable[Response]]]:
        def wrap(view: SessionView) -> Callable[[Request], Awaitable[Response]]:
            async def endpoint(request: Request) -> Response:
                session = await self.sessions.current(request)
                if session is None:
                    if request.method == "GET":
                        return signin_page(request)
                    return redirect(request, "/ui/")
                if scope is not None and not session.can(scope):
                    raise Forbidden(f"this API key lacks the scope {scope!r}")
                return await view(request, session)

            return safe(endpoint)

        return wrap

    async def signin(self, request: Request) -> Response:
        fields = await read_form(request, request.cookies.get(LOGIN_COOKIE))
        key = await runtime_of(request).keys.authenticate(fields.get("key", "").strip())
        if key is None:
            log.info("dashboard sign-in refused")
            return signin_page(request, 401, "That API key is unknown or revoked.")
        token = self.sessions.open(key.id, key.org, key.scopes)
        log.info("dashboard sign-in: key %s of org %s", key.id, key.org)
        response = redirect(request, "/ui/")
        set_cookie(request, response, COOKIE, token)
        response.delete_cookie(LOGIN_COOKIE, path=cookie_path(request))
        return response

    async def signout(self, request: Request, session: Session) -> Response:
        await read_form(request, session.csrf)
        self.sessions.close(request.cookies.get(COOKIE))
        response = redirect(request, "/ui/")
        response.delete_cookie(COOKIE, path=cookie_path(request))
        return response
