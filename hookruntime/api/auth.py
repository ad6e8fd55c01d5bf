"""Bearer API keys on every ``/v1`` route, and the scopes a route needs."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from ..keys import ApiKeyInfo
from ..runtime import HookRuntime
from .problems import problem

__all__ = ["authenticate"]


async def authenticate(
    request: Request, runtime: HookRuntime, scope: str | None = None
) -> ApiKeyInfo | JSONResponse:
    """The caller's key, or the problem response to send instead (401 or 403)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return problem(
            401,
            "Unauthorized",
            "send `Authorization: Bearer <api key>`",
            headers={"WWW-Authenticate": "Bearer"},
        )
    key = await runtime.keys.authenticate(token)
    if key is None:
        return problem(
            401,
            "Unauthorized",
            "the API key is unknown or revoked",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if scope is not None and scope not in key.scopes:
        return problem(403, "Forbidden", f"this API key lacks the scope {scope!r}")
    return key
