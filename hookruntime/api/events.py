"""``/v1/events``, ``/v1/calls`` and ``/v1/deliveries``: thin layers over the runtime."""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..blocking import serving_hook
from ..errors import ConflictError, NotFoundError
from ..keys import ApiKeyInfo
from ..queue.deliveries import DeliveryView
from ..queue.outbox import MAX_KEY
from ..runtime import HookRuntime
from . import schemas
from .io import (
    MAX_DEADLINE,
    MAX_PAGE,
    as_object,
    float_param,
    int_param,
    invalid,
    read_json,
    require,
    unix_time,
)
from .limits import limiters
from .openapi import Endpoint
from .problems import HTTPProblem

__all__ = ["ROUTES"]

_DEPTH = re.compile(r"[0-9]{1,4}")
_IDEMPOTENCY_KEY = re.compile(schemas.IDEMPOTENCY_KEY["pattern"])
_FILTERS = ("status", "topic", "registration_id", "since", "until")
MANAGE, READ = "webhooks:manage", "deliveries:read"


def _runtime(request: Request) -> HookRuntime:
    runtime: HookRuntime = request.app.state.runtime
    return runtime


def _topic(body: dict[str, Any]) -> str:
    topic = body.get("topic")
    if not isinstance(topic, str):
        raise HTTPProblem(
            422,
            "Invalid request",
            "topic is required",
            errors=[{"field": "topic", "message": "required, a string"}],
        )
    if "data" not in body:
        raise HTTPProblem(
            422,
            "Invalid request",
            "data is required",
            errors=[{"field": "data", "message": "required"}],
        )
    return topic


async def emit(request: Request) -> Response:
    key = await require(request, "events:emit")
    limiters(request).events.take(key.id)
    body = as_object(await read_json(request), {"topic", "data", "key"})
    topic = _topic(body)
    if not isinstance(body.get("key"), str | None):
        raise invalid("key", "must be a string or null")
    idempotency_key = request.headers.get("idempotency-key")
    if idempotency_key is not None and not _IDEMPOTENCY_KEY.fullmatch(idempotency_key):
        raise invalid("Idempotency-Key", f"1 to {MAX_KEY} printable ASCII characters")
    try:
        published = await _runtime(request).publish(
            topic,
            [body["data"]],
            org=key.org,
            keys=[body.get("key")],
            idempotency_key=idempotency_key,
        )
    except ConflictError as exc:
        if idempotency_key is None:
            raise
        # The key names an event of another request: 422, as this route has always said.
        raise HTTPProblem(
            422, "Idempotency-Key reused", "this Idempotency-Key was used with a different body"
        ) from exc
    return JSONResponse(
        {"id": published.ids[0], "deliveries": published.deliveries}, status_code=202
    )


async def call(request: Request) -> Response:
    key = await require(request, "hooks:call")
    limiters(request).calls.take(key.id)
    body = as_object(await read_json(request), {"topic", "data", "deadline"})
    topic = _topic(body)
    deadline = body.get("deadline")
    # Typed and ranged here: a huge integer would overflow the caller's float checks.
    if deadline is not None and (
        isinstance(deadline, bool)
        or not isinstance(deadline, int | float)
        or not 0 < deadline <= MAX_DEADLINE
    ):
        raise invalid("deadline", f"must be a number of seconds in (0, {MAX_DEADLINE:g}]")
    depth = request.headers.get("x-hook-depth")
    if depth is not None and not _DEPTH.fullmatch(depth.strip()):
        raise invalid("X-Hook-Depth", "a small whole number")
    with serving_hook(request.headers):  # a hook calling back into its own chain is refused
        result = await _runtime(request).call(topic, body["data"], org=key.org, deadline=deadline)
    return JSONResponse(result.to_dict())


async def event(request: Request) -> Response:
    key = await require(request, READ)
    runtime = _runtime(request)
    found = await runtime.deliveries.event(request.path_params["id"], org=key.org)
    if found["topic"] in runtime.catalog.hidden_from(key.scopes):
        raise NotFoundError(f"no event {found['id']!r} in org {key.org!r}")
    deliveries = await runtime.deliveries.list(
        org=key.org, event_id=found["id"], limit=MAX_PAGE, hidden=_hidden(request, key)
    )
    return JSONResponse(
        {
            "id": found["id"],
            "topic": found["topic"],
            "key": found["key"],
            "data": json.loads(found["payload"]),
            "created_at": found["created_at"],
            "deliveries": [d.to_dict() for d in deliveries],
        }
    )


def _hidden(request: Request, key: ApiKeyInfo) -> frozenset[str]:
    return _runtime(request).catalog.hidden_from(key.scopes)


def _filters(request: Request) -> dict[str, Any]:
    return {
        "status": request.query_params.get("status"),
        "topic": request.query_params.get("topic"),
        "registration_id": request.query_params.get("registration_id"),
        "since": float_param(request, "since"),
        "until": float_param(request, "until"),
    }


async def deliveries(request: Request) -> Response:
    key = await require(request, READ, (*_FILTERS, "limit", "after"))
    limit = int_param(request, "limit", 100, 1, MAX_PAGE)
    items = await _runtime(request).deliveries.list(
        org=key.org,
        limit=limit,
        after=request.query_params.get("after"),
        hidden=_hidden(request, key),
        **_filters(request),
    )
    cursor = items[-1].id if len(items) == limit else None
    return JSONResponse({"items": [d.to_dict() for d in items], "next": cursor})


async def delivery(request: Request) -> Response:
    key = await require(request, READ)
    return JSONResponse((await _visible_delivery(request, key)).to_dict())


async def _visible_delivery(request: Request, key: ApiKeyInfo) -> DeliveryView:
    """The delivery named in the path, unless its topic needs a scope the key lacks:
    then not found, as another org's."""
    found = await _runtime(request).deliveries.get(request.path_params["id"], org=key.org)
    missing = NotFoundError(f"no delivery {found.id!r} in org {key.org!r}")
    if found.topic in _hidden(request, key):
        raise missing
    try:  # a registration carrying a topic the key lacks hides all its deliveries
        await _runtime(request).registrations.get(
            found.registration_id, org=key.org, scopes=key.scopes
        )
    except NotFoundError:
        raise missing from None
    return found


async def retry(request: Request) -> Response:
    key = await require(request, MANAGE)
    await _visible_delivery(request, key)
    found = await _runtime(request).deliveries.retry(request.path_params["id"], org=key.org)
    return JSONResponse(found.to_dict(), status_code=202)


async def retry_many(request: Request) -> Response:
    key = await require(request, MANAGE)
    body = as_object(await read_json(request, optional=True), _FILTERS)
    for name in ("status", "topic", "registration_id"):
        if name in body and not isinstance(body[name], str):
            raise invalid(name, "must be a string")
    for name in ("since", "until"):
        if name in body:
            body[name] = unix_time(body[name], name)
    count = await _runtime(request).deliveries.retry_many(
        org=key.org, hidden=_hidden(request, key), **body
    )
    return JSONResponse({"retried": count}, status_code=202)


ROUTES = [
    Endpoint(
        "/v1/events",
        "POST",
        emit,
        "Emit an event ({topic,data,key?}; Idempotency-Key honoured)",
        "events:emit",
        schemas.EVENT,
        status=202,
        headers=(("Idempotency-Key", schemas.IDEMPOTENCY_KEY),),
    ),
    Endpoint(
        "/v1/calls",
        "POST",
        call,
        "Make a blocking call; returns the CallResult",
        "hooks:call",
        schemas.CALL,
    ),
    Endpoint("/v1/events/{id}", "GET", event, "An event with its deliveries", READ),
    Endpoint(
        "/v1/deliveries",
        "GET",
        deliveries,
        "List deliveries",
        READ,
        answer=schemas.PAGE,
        query=(*_FILTERS, "limit", "after"),
    ),
    Endpoint(
        "/v1/deliveries/retry",
        "POST",
        retry_many,
        "Retry every delivery matching a filter",
        MANAGE,
        schemas.FILTER,
        body_required=False,
        status=202,
    ),
    Endpoint("/v1/deliveries/{id}", "GET", delivery, "A delivery with its attempts", READ),
    Endpoint(
        "/v1/deliveries/{id}/retry",
        "POST",
        retry,
        "Retry (replay) one delivery",
        MANAGE,
        status=202,
    ),
]
