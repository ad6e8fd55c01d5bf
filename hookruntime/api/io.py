"""Reading requests safely: bounded JSON bodies, authentication, query parameters."""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterable
from typing import Any

from starlette.requests import Request

from ..keys import ApiKeyInfo
from ..runtime import HookRuntime
from .problems import HTTPProblem

__all__ = [
    "MAX_BODY",
    "RateLimiter",
    "as_object",
    "float_param",
    "int_param",
    "known_params",
    "read_json",
    "require",
]

#: Largest request body accepted.
MAX_BODY = 1024 * 1024


async def read_json(request: Request, *, optional: bool = False) -> Any:
    """The request's JSON body, at most MAX_BODY bytes (413 beyond; 415 when not JSON)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise HTTPProblem(413, "Request body too large", f"the limit is {MAX_BODY} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise HTTPProblem(413, "Request body too large", f"the limit is {MAX_BODY} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw:
        if optional:
            return {}
        raise HTTPProblem(400, "Body required", "send a JSON object")
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media and media != "application/json" and not media.endswith("+json"):
        raise HTTPProblem(415, "Unsupported media type", "send Content-Type: application/json")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise HTTPProblem(400, "Malformed JSON", f"the body is not JSON: {exc}") from None


def as_object(body: Any, allowed: Iterable[str]) -> dict[str, Any]:
    """``body`` as an object holding only ``allowed`` keys (422 otherwise)."""
    if not isinstance(body, dict):
        raise HTTPProblem(
            422,
            "Invalid request",
            "the body must be a JSON object",
            errors=[{"field": "(body)", "message": "must be an object"}],
        )
    names = set(allowed)
    unknown = sorted(set(body) - names)
    if unknown:
        raise HTTPProblem(
            422,
            "Invalid request",
            f"unknown field(s): {', '.join(unknown)}",
            errors=[
                {"field": f, "message": f"unknown field; known: {', '.join(sorted(names))}"}
                for f in unknown
            ],
        )
    return body


async def require(
    request: Request, scope: str | None = None, params: tuple[str, ...] = ()
) -> ApiKeyInfo:
    """The caller's API key (401 without a valid one; 403 without ``scope``); query
    parameters other than ``params`` are refused."""
    runtime: HookRuntime = request.app.state.runtime
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    challenge = {"WWW-Authenticate": "Bearer"}
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPProblem(401, "Unauthorized", "send `Authorization: Bearer <api key>`", challenge)
    key = await runtime.keys.authenticate(token.strip())
    if key is None:
        raise HTTPProblem(401, "Unauthorized", "the API key is unknown or revoked", challenge)
    if scope is not None and scope not in key.scopes:
        raise HTTPProblem(403, "Forbidden", f"this API key lacks the scope {scope!r}")
    known_params(request, *params)
    return key


def known_params(request: Request, *names: str) -> None:
    """Refuse query parameters the route does not take (a typo would filter nothing)."""
    unknown = sorted(set(request.query_params) - set(names))
    if unknown:
        raise HTTPProblem(
            422,
            "Invalid request",
            f"unknown query parameter(s): "
            f"{', '.join(unknown)}; known: {', '.join(names) or 'none'}",
            errors=[{"field": n, "message": "unknown query parameter"} for n in unknown],
        )


def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    # Not str.isdigit(): it accepts digits such as "³" that int() refuses.
    if not re.fullmatch(r"-?[0-9]{1,12}", raw) or not low <= int(raw) <= high:
        raise HTTPProblem(
            422,
            "Invalid request",
            f"{name} must be an integer {low}..{high}",
            errors=[{"field": name, "message": f"an integer {low}..{high}"}],
        )
    return int(raw)


def float_param(request: Request, name: str) -> float | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise HTTPProblem(
            422,
            "Invalid request",
            f"{name} must be a Unix time in seconds",
            errors=[{"field": name, "message": "a Unix time in seconds"}],
        )
    return value


class RateLimiter:
    """A token bucket per API key: ``rate`` events per second, bursts of ``burst``."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str, cost: float = 1.0) -> None:
        now = time.monotonic()
        tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < cost:
            wait = math.ceil((cost - tokens) / self.rate)
            raise HTTPProblem(
                429,
                "Too many events",
                f"this key may submit {self.rate:g} events per second",
                {"Retry-After": str(max(wait, 1))},
            )
        self._buckets[key] = (tokens - cost, now)
