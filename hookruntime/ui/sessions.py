"""Dashboard sessions: kept server-side, keyed by a random token in an HttpOnly,
SameSite=Strict cookie. A session holds the key's id, org and scopes, never the key;
the key is looked up again on every request, so a revoked key ends its sessions.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from ..catalog import Catalog
from ..errors import HookRuntimeError
from ..runtime import HookRuntime
from ..store.models import API_KEYS
from .mount import cookie_path

__all__ = [
    "COOKIE",
    "LOGIN_COOKIE",
    "Forbidden",
    "Session",
    "SessionStore",
    "same",
    "set_cookie",
]

COOKIE = "hookruntime_session"
#: Holds the sign-in form's CSRF token (double submit) before there is a session.
LOGIN_COOKIE = "hookruntime_signin"
#: A session ends after this many seconds without a request.
IDLE = 8 * 3600.0
MAX_SESSIONS = 10_000


@dataclass(frozen=True)
class Session:
    key_id: str
    org: str
    scopes: tuple[str, ...]
    csrf: str
    seen: float

    def can(self, scope: str) -> bool:
        return scope in self.scopes

    def hidden(self, catalog: Catalog) -> frozenset[str]:
        """Topics whose scopes this key lacks: their registrations, deliveries and calls
        are out of its sight, as in the API."""
        granted = set(self.scopes)
        return frozenset(t.name for t in catalog.values() if not set(t.scopes) <= granted)

    def check_topics(self, catalog: Catalog, topics: Iterable[str]) -> None:
        hidden = self.hidden(catalog)
        missing = sorted({s for t in topics if t in hidden for s in catalog[t].scopes})
        if missing:
            raise Forbidden(f"this API key lacks the topic scope(s) {', '.join(missing)}")


class Forbidden(HookRuntimeError):
    """The session's key lacks a scope the page needs."""


class SessionStore:
    """Sessions of one process (a restart signs everyone out, which is acceptable for
    an operator's dashboard and keeps no session material in the database)."""

    def __init__(self) -> None:
        self._by_token: dict[str, Session] = {}

    def open(self, key_id: str, org: str, scopes: tuple[str, ...]) -> str:
        self._expire()
        token = secrets.token_urlsafe(32)
        self._by_token[token] = Session(key_id, org, scopes, secrets.token_urlsafe(24), time.time())
        return token

    def close(self, token: str | None) -> None:
        if token:
            self._by_token.pop(token, None)

    async def current(self, request: Request) -> Session | None:
        """The request's session when its cookie names one and its key is still valid."""
        token = request.cookies.get(COOKIE)
        session = self._by_token.get(token) if token else None
        if token is None or session is None:
            return None
        now = time.time()
        if now - session.seen > IDLE:
            self.close(token)
            return None
        runtime: HookRuntime = request.app.state.runtime
        query = select(API_KEYS.c.org_id, API_KEYS.c.scopes, API_KEYS.c.revoked_at).where(
            API_KEYS.c.id == session.key_id
        )
        async with runtime.database.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None or row.revoked_at is not None or row.org_id != session.org:
            self.close(token)
            return None
        session = replace(session, scopes=tuple(row.scopes), seen=now)
        self._by_token[token] = session
        return session

    def _expire(self) -> None:
        now = time.time()
        for token in [t for t, s in self._by_token.items() if now - s.seen > IDLE]:
            del self._by_token[token]
        while len(self._by_token) >= MAX_SESSIONS:  # drop the oldest
            del self._by_token[next(iter(self._by_token))]


def same(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))


def set_cookie(request: Request, response: Response, name: str, value: str) -> None:
    response.set_cookie(
        name,
        value,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path=cookie_path(request),
    )
