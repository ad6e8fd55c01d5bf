"""Reading requests safely: bounded JSON bodies, authentication, query parameters."""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Callable, Iterable
from itertools import islice
from typing import Any, TypeVar

import anyio
from starlette.requests import Request

from ..keys import ApiKeyInfo
from ..runtime import HookRuntime
from ..validation import text_problem
from .problems import HTTPProblem

__all__ = [
    "MAX_BODY",
    "MAX_DEADLINE",
    "MAX_DEPTH",
    "MAX_PAGE",
    "MAX_TIME",
    "as_object",
    "check_value",
    "float_param",
    "int_param",
    "invalid",
    "known_params",
    "off_loop",
    "parse_body",
    "plain_params",
    "read_json",
    "require",
    "unix_time",
]

_T = TypeVar("_T")

#: Largest request body accepted.
MAX_BODY = 1024 * 1024
#: Deepest nesting of arrays and objects in a body.
MAX_DEPTH = 64
#: A call's deadline is at most its topic's anyway (30 s at most); beyond this, a typo.
MAX_DEADLINE = 3600.0
#: Most items of one page of a listing (``?limit=``).
MAX_PAGE = 1000
#: Largest Unix time a filter takes (the year 5138): beyond, no column could compare.
MAX_TIME = 1e11
#: Unknown fields or parameters named in one answer.
_LISTED = 20
#: Longest path or query parameter value.
MAX_PARAM = 1000
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SIZE = re.compile(r"[0-9]{1,18}")
#: Bodies up to this size are parsed on the event loop, larger ones on a thread.
_INLINE_BODY = 32 * 1024
#: An escape that may spell NUL or a surrogate (a valid pair, too: the walk decides).
_SUSPECT = re.compile(rb"\\u(?:0000|[dD][89abcdefABCDEF])")


async def read_json(request: Request, *, optional: bool = False) -> Any:
    """The request's JSON body, at most MAX_BODY bytes (413 beyond; 415 when not JSON),
    nested at most MAX_DEPTH deep, with no NUL nor lone surrogate in any string (422)."""
    declared = request.headers.get("content-length")
    if declared is not None and _declared_size(declared) > MAX_BODY:
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
    if len(raw) <= _INLINE_BODY:
        return parse_body(raw)
    # Parsing and inspecting a large body takes tens of milliseconds: not on the loop.
    return await anyio.to_thread.run_sync(parse_body, raw)


async def off_loop(request: Request, work: Callable[..., _T], *args: Any) -> _T:
    """``work(*args)``: inline for a small request body, on a thread for a large one,
    whose every pass (encoding, hashing) takes tens of milliseconds."""
    if _declared_size(request.headers.get("content-length", "")) > _INLINE_BODY:
        return await anyio.to_thread.run_sync(work, *args)
    return work(*args)


def _declared_size(header: str) -> int:
    """Content-Length as a number; 0 when it is not one (the body read decides)."""
    # ASCII digits only: str.isdigit() accepts "²", which int() refuses.
    return int(header) if _SIZE.fullmatch(header) else 0


def parse_body(raw: bytes) -> Any:
    """``raw`` as JSON: UTF-8, no NaN or Infinity, nested at most MAX_DEPTH deep, and
    no NUL nor lone surrogate in any string or key."""
    try:
        # RFC 8259 lets a parser ignore a byte order mark; some clients still send one.
        text = raw.decode("utf-8").removeprefix("\ufeff")
        value = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise _too_deep() from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HTTPProblem(400, "Malformed JSON", f"the body is not JSON: {exc}") from None
    except ValueError:  # an integer of more digits than Python converts
        raise invalid("(body)", "a number has too many digits") from None
    # Searching escapes and counting brackets run at C speed: only a body that could hold
    # NUL or a surrogate is walked string by string, and only one that could be too deep
    # is measured.
    if _SUSPECT.search(raw):
        check_value(value)
    elif raw.count(b"[") + raw.count(b"{") > MAX_DEPTH:
        _check_depth(value)
    return value


def _check_depth(value: Any) -> None:
    """Refuse nesting deeper than MAX_DEPTH, a level at a time: a fraction of the cost of
    visiting every value, since scalars are only skipped."""
    level = [value] if isinstance(value, dict | list) else []
    for _ in range(MAX_DEPTH):
        level = [
            member
            for item in level
            for member in (item.values() if isinstance(item, dict) else item)
            if isinstance(member, dict | list)
        ]
        if not level:
            return
    raise _too_deep()


def check_value(value: Any) -> None:
    """Refuse nesting deeper than MAX_DEPTH and strings (values or keys) holding NUL or
    a lone surrogate, naming where. Iterative, so depth cannot exhaust the stack."""
    stack: list[tuple[Any, tuple[str, ...], int]] = [(value, (), 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            if problem := text_problem(item):
                raise invalid(_field(path), problem)
            continue
        if not isinstance(item, dict | list):
            continue
        if depth >= MAX_DEPTH:
            raise _too_deep()
        if isinstance(item, dict):
            for name, member in item.items():
                if problem := text_problem(name):
                    raise invalid(_field((*path, name)), f"field name {problem}")
                stack.append((member, (*path, name), depth + 1))
        else:
            stack.extend((member, (*path, str(i)), depth + 1) for i, member in enumerate(item))


def invalid(field: str, message: str) -> HTTPProblem:
    return HTTPProblem(
        422,
        "Invalid request",
        f"{field}: {message}",
        errors=[{"field": field, "message": message}],
    )


def _field(path: tuple[str, ...]) -> str:
    """A dotted path safe to print and to encode, whatever the names hold."""
    text = ".".join(path)[:200] or "(body)"
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def _too_deep() -> HTTPProblem:
    return invalid("(body)", f"nested more than {MAX_DEPTH} levels deep")


def _no_constant(name: str) -> Any:
    raise invalid("(body)", f"{name} is not JSON; send numbers only")


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
    # A few are enough to name; a body may hold tens of thousands.
    unknown = sorted(islice((n for n in body if n not in names), _LISTED))
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
    plain_params(request)
    return key


def plain_params(request: Request) -> None:
    """Refuse path and query parameters that no query could hold: control characters
    (NUL among them), lone surrogates, or more than MAX_PARAM characters."""
    given = [*request.path_params.items(), *request.query_params.multi_items()]
    for name, value in given:
        if not isinstance(value, str):
            continue
        if len(value) > MAX_PARAM:
            raise invalid(_field((name,)), f"at most {MAX_PARAM} characters")
        if _CONTROL.search(value) or text_problem(value):
            raise invalid(_field((name,)), "must be printable text")


def known_params(request: Request, *names: str) -> None:
    """Refuse query parameters the route does not take (a typo would filter nothing)."""
    unknown = sorted(set(request.query_params) - set(names))[:_LISTED]
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
    return None if raw is None else unix_time(raw, name)


def unix_time(raw: Any, name: str) -> float:
    """``raw`` (a number, or its text in a query) as a Unix time, or 422 naming ``name``."""
    value = math.nan
    if isinstance(raw, str):
        with contextlib.suppress(ValueError):
            value = float(raw)
    elif isinstance(raw, int | float) and not isinstance(raw, bool):
        value = float(raw) if abs(raw) <= MAX_TIME else math.nan
    if not (math.isfinite(value) and abs(value) <= MAX_TIME):
        raise HTTPProblem(
            422,
            "Invalid request",
            f"{name} must be a Unix time in seconds",
            errors=[{"field": name, "message": "a Unix time in seconds"}],
        )
    return value
