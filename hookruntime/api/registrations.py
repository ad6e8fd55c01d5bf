"""``/v1/registrations`` and the test routes: thin layers over ``runtime.registrations``."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..registrations import EDITABLE
from ..runtime import HookRuntime
from . import schemas
from .io import MAX_PAGE, as_object, int_param, invalid, read_json, require
from .limits import limiters
from .openapi import Endpoint
from .problems import HTTPProblem

__all__ = ["ROUTES"]

MANAGE = "webhooks:manage"
#: Aliases of the seeds: ``topic`` (seed 001), ``events`` and ``is_active`` (seed 002).
_ALIASES = {"topic": "topics", "events": "topics", "is_active": "active"}
_FIELDS = EDITABLE | set(_ALIASES) | {"rev"}
_REV = re.compile(r"[\x21-\x7e]{1,100}")
_LISTING = ("topic", "limit", "after")


def _runtime(request: Request) -> HookRuntime:
    runtime: HookRuntime = request.app.state.runtime
    return runtime


def _fields(body: Any) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, value in as_object(body, _FIELDS).items():
        target = _ALIASES.get(name, name)
        if target in values:
            raise HTTPProblem(
                422,
                "Invalid request",
                f"{name!r} repeats {target!r}",
                errors=[{"field": name, "message": f"give {target} once"}],
            )
        values[target] = value
    if isinstance(values.get("topics"), str):
        values["topics"] = [values["topics"]]
    return values


def _rev(request: Request, values: dict[str, Any], required: bool) -> str | None:
    rev = values.pop("rev", None)
    if rev is None:
        rev = request.headers.get("if-match", "").strip('"') or None
        if rev is not None and not _REV.fullmatch(rev):
            raise invalid("If-Match", "the registration's rev, as read")
    if rev is None and required:
        raise HTTPProblem(
            428, "rev required", "send the registration's current rev (body field rev, or If-Match)"
        )
    if rev is not None and not isinstance(rev, str):
        raise HTTPProblem(
            422,
            "Invalid request",
            "rev must be a string",
            errors=[{"field": "rev", "message": "a string"}],
        )
    return rev


def _topic(body: dict[str, Any], required: bool) -> str | None:
    topic = body.get("topic")
    if topic is None and not required:
        return None
    if not isinstance(topic, str):
        raise invalid("topic", "required, a topic name" if required else "a topic name")
    return topic


async def create(request: Request) -> Response:
    key = await require(request, MANAGE)
    values = _fields(await read_json(request))
    values.pop("rev", None)
    for needed in ("topics", "url"):
        if needed not in values:
            raise HTTPProblem(
                422,
                "Invalid request",
                f"{needed} is required",
                errors=[{"field": needed, "message": "required"}],
            )
    registration = await _runtime(request).registrations.create(
        org=key.org, scopes=key.scopes, **values
    )
    return JSONResponse(
        registration.to_dict(),
        status_code=201,
        headers={"Location": f"/v1/registrations/{registration.id}"},
    )


async def listing(request: Request) -> Response:
    key = await require(request, MANAGE, _LISTING)
    limit = int_param(request, "limit", 100, 1, MAX_PAGE)
    items = await _runtime(request).registrations.list(
        org=key.org,
        topic=request.query_params.get("topic"),
        limit=limit,
        after=request.query_params.get("after"),
        scopes=key.scopes,
    )
    cursor = items[-1].id if len(items) == limit else None
    return JSONResponse({"items": [r.to_dict() for r in items], "next": cursor})


async def read(request: Request) -> Response:
    key = await require(request, MANAGE)
    registration = await _runtime(request).registrations.get(
        request.path_params["id"], org=key.org, scopes=key.scopes
    )
    return JSONResponse(registration.to_dict(), headers={"ETag": f'"{registration.rev}"'})


async def change(request: Request) -> Response:
    key = await require(request, MANAGE)
    values = _fields(await read_json(request))
    rev = _rev(request, values, required=True)
    assert rev is not None
    if request.method == "PUT":
        missing = [n for n in ("topics", "url") if n not in values]
        if missing:
            raise HTTPProblem(
                422,
                "Invalid request",
                "PUT replaces the registration: send "
                + " and ".join(missing)
                + " (or PATCH to change some fields)",
                errors=[{"field": n, "message": "required"} for n in missing],
            )
    registration = await _runtime(request).registrations.update(
        request.path_params["id"], org=key.org, rev=rev, scopes=key.scopes, **values
    )
    return JSONResponse(registration.to_dict(), headers={"ETag": f'"{registration.rev}"'})


async def remove(request: Request) -> Response:
    key = await require(request, MANAGE)
    values = _fields(await read_json(request, optional=True))
    rev = _rev(request, values, required=False)
    await _runtime(request).registrations.delete(
        request.path_params["id"], org=key.org, rev=rev, scopes=key.scopes
    )
    return Response(status_code=204)


async def rotate(request: Request) -> Response:
    key = await require(request, MANAGE)
    body = as_object(await read_json(request, optional=True), {"rev", "secret", "grace"})
    registration = await _runtime(request).registrations.rotate_secret(
        request.path_params["id"],
        org=key.org,
        rev=body.get("rev"),
        secret=body.get("secret"),
        grace=body.get("grace", 86_400.0),
        scopes=key.scopes,
    )
    return JSONResponse(registration.to_dict())


async def test_one(request: Request) -> Response:
    key = await require(request, MANAGE)
    limiters(request).tests.take(key.id)
    body = as_object(await read_json(request, optional=True), {"topic"})
    topic = _topic(body, required=False)
    runtime = _runtime(request)
    registration = await runtime.registrations.get(
        request.path_params["id"], org=key.org, scopes=key.scopes
    )
    answer = await runtime.send_test(org=key.org, topic=topic, registration_id=registration.id)
    return JSONResponse(answer, status_code=200 if "result" in answer else 202)


async def test_topic(request: Request) -> Response:
    key = await require(request, MANAGE)
    limiters(request).tests.take(key.id)
    topic = _topic(as_object(await read_json(request), {"topic"}), required=True)
    assert topic is not None
    runtime = _runtime(request)
    declared = runtime.catalog.get_topic(topic)
    if topic in runtime.catalog.hidden_from(key.scopes):
        # As creating a registration for it would be: the test reaches its receivers.
        raise invalid("topic", f"topic {topic!r} needs scope(s) {', '.join(declared.scopes)}")
    answer = await runtime.send_test(org=key.org, topic=topic)
    return JSONResponse(answer, status_code=200 if "result" in answer else 202)


_BLOCKING = ((200, "A blocking topic: the call's result"),)
ROUTES = [
    Endpoint(
        "/v1/registrations",
        "POST",
        create,
        "Create a registration ({topic,url,secret} is enough)",
        MANAGE,
        schemas.CREATE,
        status=201,
    ),
    Endpoint(
        "/v1/registrations",
        "GET",
        listing,
        "List registrations",
        MANAGE,
        answer=schemas.PAGE,
        query=_LISTING,
    ),
    Endpoint("/v1/registrations/{id}", "GET", read, "Read a registration", MANAGE),
    Endpoint(
        "/v1/registrations/{id}",
        "PUT",
        change,
        "Replace a registration (needs rev)",
        MANAGE,
        schemas.CHANGE,
    ),
    Endpoint(
        "/v1/registrations/{id}",
        "PATCH",
        change,
        "Change some fields (needs rev)",
        MANAGE,
        schemas.CHANGE,
    ),
    Endpoint(
        "/v1/registrations/{id}",
        "DELETE",
        remove,
        "Delete a registration",
        MANAGE,
        status=204,
        answer=None,
    ),
    Endpoint(
        "/v1/registrations/{id}/rotate-secret",
        "POST",
        rotate,
        "Rotate the signing secret (returned once)",
        MANAGE,
        schemas.ROTATE,
        body_required=False,
    ),
    Endpoint(
        "/v1/registrations/{id}/test",
        "POST",
        test_one,
        "Send a topic's sample to one registration",
        MANAGE,
        status=202,
        also=_BLOCKING,
    ),
    Endpoint(
        "/v1/test",
        "POST",
        test_topic,
        "Send a topic's sample to the org's registrations",
        MANAGE,
        schemas.TOPIC_ONLY,
        status=202,
        also=_BLOCKING,
    ),
]
