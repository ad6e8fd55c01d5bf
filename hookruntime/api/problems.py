"""``application/problem+json`` answers (RFC 9457), with field-level details for validation."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from ..errors import ConflictError, HookRuntimeError, NotFoundError, ValidationError

__all__ = ["problem", "problem_from_error"]

MEDIA_TYPE = "application/problem+json"


def problem(
    status: int, title: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def problem_from_error(exc: HookRuntimeError) -> JSONResponse:
    if isinstance(exc, ValidationError):
        errors = [{"field": e.field, "message": e.message} for e in exc.errors]
        return problem(422, "Invalid request", str(exc), errors=errors)
    if isinstance(exc, NotFoundError):
        return problem(404, "Not found", str(exc))
    if isinstance(exc, ConflictError):
        return problem(409, "Conflict", str(exc))
    return problem(500, "Internal error", "the server failed to handle the request")


async def handle_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HookRuntimeError)
    return problem_from_error(exc)
