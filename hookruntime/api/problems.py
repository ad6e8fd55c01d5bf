"""``application/problem+json`` answers (RFC 9457), with field-level details for validation."""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from ..errors import (
    ConflictError,
    HookRuntimeError,
    NotFoundError,
    ReentrancyError,
    StoreLocked,
    StoreUnavailable,
    UnknownTopicError,
    ValidationError,
)

__all__ = [
    "MEDIA_TYPE",
    "HTTPProblem",
    "handle_error",
    "handle_problem",
    "handle_unexpected",
    "problem",
]

MEDIA_TYPE = "application/problem+json"
log = logging.getLogger("hookruntime.api")


class HTTPProblem(Exception):
    """Raised by a handler to answer with a problem document."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail
        self.headers, self.extra = headers, extra


class ProblemResponse(JSONResponse):
    media_type = MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        # ASCII escapes: a problem quoting the caller's input must render whatever it holds.
        return json.dumps(content, separators=(",", ":")).encode("ascii")


def problem(
    status: int, title: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return ProblemResponse(body, status_code=status, headers=headers)


def problem_from_error(exc: HookRuntimeError, **extra: Any) -> JSONResponse:
    if isinstance(exc, ValidationError):
        errors = [{"field": e.field, "message": e.message} for e in exc.errors]
        return problem(422, "Invalid request", str(exc), errors=errors, **extra)
    if isinstance(exc, NotFoundError):
        return problem(404, "Not found", str(exc))
    if isinstance(exc, ConflictError):
        return problem(409, "Conflict", str(exc))
    if isinstance(exc, ReentrancyError):
        return problem(409, "Re-entrant blocking call", str(exc))
    if isinstance(exc, StoreUnavailable | StoreLocked):
        # The database, not the request: worth trying again shortly. The message names
        # the URL without its password; the caller needs only the kind.
        log.warning("answered 503: %s", exc)
        return problem(
            503, "Service unavailable", "the database is unavailable; try again shortly",
            {"Retry-After": "1"},
        )  # fmt: skip
    log.error("unexpected %s: %s", type(exc).__name__, exc)
    return problem(500, "Internal error", "the server failed to handle the request")


async def handle_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HookRuntimeError)
    if isinstance(exc, UnknownTopicError):  # name them all, not only the close ones
        return problem_from_error(exc, known_topics=sorted(request.app.state.runtime.catalog))
    return problem_from_error(exc)


async def handle_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error(
        "unexpected %s on %s %s", type(exc).__name__, request.method, request.url.path,
        exc_info=exc,
    )  # fmt: skip
    return problem(500, "Internal error", "the server failed to handle the request")


async def handle_problem(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPProblem)
    return problem(exc.status, exc.title, exc.detail, exc.headers, **exc.extra)
