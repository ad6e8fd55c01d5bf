"""The OpenAPI document of the API, written beside the route table the app serves, not
from it: ``tests/integration/test_api_routes.py`` checks that the two describe the same routes."""

from __future__ import annotations

from typing import Any

__all__ = ["DOCS", "openapi"]

_OBJECT: dict[str, Any] = {"type": "object"}
_TOPICS = {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 100}
_REGISTRATION_FIELDS: dict[str, Any] = {
    "topics": _TOPICS,
    "topic": {"type": "string"},
    "events": _TOPICS,
    "url": {"type": "string", "pattern": "^https?://", "maxLength": 2048},
    "secret": {"type": "string", "maxLength": 512},
    "profile": {"enum": ["standard", "jws", "servicehook", "envelope"]},
    "priority": {"type": "integer", "minimum": -10000, "maximum": 10000},
    "on_failure": {"enum": ["ignore", "deny", None]},
    "timeout": {"type": ["number", "null"], "exclusiveMinimum": 0, "maximum": 60},
    "ordered": {"type": "boolean"},
    "headers": {
        "type": "object",
        "maxProperties": 20,
        "additionalProperties": {"type": "string", "minLength": 1, "maxLength": 1024},
    },
    "retry_schedule": {
        "type": ["array", "null"],
        "maxItems": 30,
        "items": {"type": "number", "minimum": 0, "maximum": 604800},
    },
    "max_attempts": {"type": ["integer", "null"], "minimum": 1, "maximum": 100},
    "signed_responses": {"type": "boolean"},
    "active": {"type": "boolean"},
    "is_active": {"type": "boolean"},
    "description": {"type": ["string", "null"], "maxLength": 500},
    "rev": {"type": "string"},
}
_CREATE = {
    "type": "object",
    "additionalProperties": False,
    "properties": _REGISTRATION_FIELDS,
    "required": ["url"],
    "anyOf": [{"required": ["topics"]}, {"required": ["topic"]}, {"required": ["events"]}],
}
_CHANGE = {
    "type": "object",
    "additionalProperties": False,
    "properties": _REGISTRATION_FIELDS,
    "required": ["rev"],
}
_TOPIC_ONLY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["topic"],
    "properties": {"topic": {"type": "string"}},
}
_EVENT = {
    "type": "object",
    "additionalProperties": False,
    "required": ["topic", "data"],
    "properties": {
        "topic": {"type": "string"},
        "data": {},
        "key": {"type": ["string", "null"], "minLength": 1, "maxLength": 200},
    },
}
_CALL = {
    "type": "object",
    "additionalProperties": False,
    "required": ["topic", "data"],
    "properties": {
        "topic": {"type": "string"},
        "data": {},
        "deadline": {"type": ["number", "null"], "exclusiveMinimum": 0},
    },
}
_FILTER = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "status": {"enum": ["failed", "dead", "delivered"]},
        "topic": {"type": "string"},
        "registration_id": {"type": "string"},
        "since": {"type": "number"},
        "until": {"type": "number"},
    },
}
_ROTATE = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "rev": {"type": "string"},
        "secret": {"type": "string"},
        "grace": {"type": "number", "minimum": 0, "maximum": 604800},
    },
}
_PROBLEM = {"$ref": "#/components/schemas/Problem"}
_PAGE = {
    "type": "object",
    "required": ["items", "next"],
    "properties": {
        "items": {"type": "array", "items": _OBJECT},
        "next": {"type": ["string", "null"]},
    },
}

#: (summary, scope, request body schema or None, success status, success schema, queries)
DOCS: dict[
    tuple[str, str],
    tuple[str, str | None, dict[str, Any] | None, int, dict[str, Any] | None, tuple[str, ...]],
] = {
    ("/healthz", "GET"): ("Liveness and database reachability", None, None, 200, _OBJECT, ()),
    ("/openapi.json", "GET"): ("This document", None, None, 200, _OBJECT, ()),
    ("/metrics", "GET"): ("Prometheus metrics (text exposition format)", None, None, 200, None, ()),
    ("/docs", "GET"): ("This document as an interactive page (HTML)", None, None, 200, None, ()),
    ("/v1/topics", "GET"): ("The catalog of topics", "", None, 200, _OBJECT, ()),
    ("/v1/registrations", "POST"): (
        "Create a registration ({topic,url,secret} is enough)",
        "webhooks:manage",
        _CREATE,
        201,
        _OBJECT,
        (),
    ),
    ("/v1/registrations", "GET"): (
        "List registrations",
        "webhooks:manage",
        None,
        200,
        _PAGE,
        ("topic", "limit", "after"),
    ),
    ("/v1/registrations/{id}", "GET"): (
        "Read a registration",
        "webhooks:manage",
        None,
        200,
        _OBJECT,
        (),
    ),
    ("/v1/registrations/{id}", "PUT"): (
        "Replace a registration (needs rev)",
        "webhooks:manage",
        _CHANGE,
        200,
        _OBJECT,
        (),
    ),
    ("/v1/registrations/{id}", "PATCH"): (
        "Change some fields (needs rev)",
        "webhooks:manage",
        _CHANGE,
        200,
        _OBJECT,
        (),
    ),
    ("/v1/registrations/{id}", "DELETE"): (
        "Delete a registration",
        "webhooks:manage",
        None,
        204,
        None,
        (),
    ),
    ("/v1/registrations/{id}/rotate-secret", "POST"): (
        "Rotate the signing secret (returned once)",
        "webhooks:manage",
        _ROTATE,
        200,
        _OBJECT,
        (),
    ),
    ("/v1/registrations/{id}/test", "POST"): (
        "Send a topic's sample to one registration",
        "webhooks:manage",
        None,
        202,
        _OBJECT,
        (),
    ),
    ("/v1/test", "POST"): (
        "Send a topic's sample to the org's registrations",
        "webhooks:manage",
        _TOPIC_ONLY,
        202,
        _OBJECT,
        (),
    ),
    ("/v1/events", "POST"): (
        "Emit an event ({topic,data,key?}; Idempotency-Key honoured)",
        "events:emit",
        _EVENT,
        202,
        _OBJECT,
        (),
    ),
    ("/v1/calls", "POST"): (
        "Make a blocking call; returns the CallResult",
        "hooks:call",
        _CALL,
        200,
        _OBJECT,
        (),
    ),
    ("/v1/events/{id}", "GET"): (
        "An event with its deliveries",
        "deliveries:read",
        None,
        200,
        _OBJECT,
        (),
    ),
    ("/v1/deliveries", "GET"): (
        "List deliveries",
        "deliveries:read",
        None,
        200,
        _PAGE,
        ("status", "topic", "registration_id", "since", "until", "limit", "after"),
    ),
    ("/v1/deliveries/{id}", "GET"): (
        "A delivery with its attempts",
        "deliveries:read",
        None,
        200,
        _OBJECT,
        (),
    ),
    ("/v1/deliveries/{id}/retry", "POST"): (
        "Retry (replay) one delivery",
        "webhooks:manage",
        None,
        202,
        _OBJECT,
        (),
    ),
    ("/v1/deliveries/retry", "POST"): (
        "Retry every delivery matching a filter",
        "webhooks:manage",
        _FILTER,
        202,
        _OBJECT,
        (),
    ),
}

#: Routes whose body may be left out (every field has a default).
_OPTIONAL_BODY = {
    ("/v1/deliveries/retry", "POST"),
    ("/v1/registrations/{id}/rotate-secret", "POST"),
}

_QUERY: dict[str, dict[str, Any]] = {
    "limit": {"type": "integer", "minimum": 1, "maximum": 1000},
    "since": {"type": "number"},
    "until": {"type": "number"},
    "status": {"enum": ["pending", "delivering", "delivered", "failed", "dead"]},
}

_ERRORS = {
    "400": "Malformed JSON",
    "401": "No or bad API key",
    "403": "Missing scope",
    "404": "No such object in this org",
    "409": "Stale rev or conflict",
    "413": "Body too large",
    "415": "Not JSON",
    "422": "Invalid fields",
    "428": "rev required",
    "429": "Rate limited",
}


def openapi(version: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for (path, method), (summary, scope, body, status, schema, queries) in DOCS.items():
        operation: dict[str, Any] = {"summary": summary, "responses": {}}
        if scope is not None:
            operation["security"] = [{"bearer": []}]
            if scope:
                operation["description"] = f"Needs the scope `{scope}`."
            operation["responses"].update(
                {
                    code: {
                        "description": text,
                        "content": {"application/problem+json": {"schema": _PROBLEM}},
                    }
                    for code, text in _ERRORS.items()
                }
            )
        parameters = (
            [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}]
            if "{id}" in path
            else []
        )
        parameters += [
            {
                "name": q,
                "in": "query",
                "required": False,
                "schema": _QUERY.get(q, {"type": "string"}),
            }
            for q in queries
        ]
        if parameters:
            operation["parameters"] = parameters
        if body is not None:
            operation["requestBody"] = {
                "required": (path, method) not in _OPTIONAL_BODY,
                "content": {"application/json": {"schema": body}},
            }
        success: dict[str, Any] = {"description": "OK"}
        if schema is not None:
            success["content"] = {"application/json": {"schema": schema}}
        if path == "/metrics":
            success["content"] = {"text/plain": {"schema": {"type": "string"}}}
        operation["responses"][str(status)] = success
        if path.endswith("/test") or path == "/v1/test":
            operation["responses"]["200"] = {
                "description": "A blocking topic: the call's result",
                "content": {"application/json": {"schema": _OBJECT}},
            }
        paths.setdefault(path, {})[method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "hookruntime", "version": version},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Problem": {
                    "type": "object",
                    "required": ["type", "title", "status", "detail"],
                    "properties": {
                        "type": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string"},
                        "errors": {"type": "array", "items": _OBJECT},
                    },
                }
            },
        },
    }
