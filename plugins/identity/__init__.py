"""Identity hooks of an SSO login service (seed 001, risr/advance).

``user_logged_in`` and ``user_registered`` are blocking: the person waits on the
login page until every receiver answers, so receivers may deny the login or patch
the profile before the application loads. ``profile_updated`` is queued and carries
the full updated profile.
"""

from __future__ import annotations

from typing import Any

from hookruntime import SimplePlugin, Topic

__all__ = ["plugin"]

PROFILE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id"],
    "properties": {
        "id": {"type": "string", "minLength": 1},
        "rev": {"type": "string"},
        "email": {"type": "string"},
        "firstName": {"type": "string"},
        "lastName": {"type": "string"},
        "auditLog": {"type": "array"},
        "userFields": {"type": "array"},
    },
}

#: The example profile that seed 001's test hook sends, without the request id the
#: ``jws`` profile adds to every request.
PROFILE_SAMPLE: dict[str, Any] = {
    "auditLog": [],
    "id": "profile_org_id",
    "email": "john@doe.com",
    "rev": "1-1324",
    "firstName": "John",
    "lastName": "Doe",
    "userFields": [],
}

LOGIN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id"],
    "properties": {
        **PROFILE_SCHEMA["properties"],
        "sso": {
            "type": "object",
            "description": "Everything collected from the SSO headers, as received.",
        },
    },
}

LOGIN_SAMPLE: dict[str, Any] = {
    **PROFILE_SAMPLE,
    "sso": {"provider": "saml", "nameId": "john@doe.com", "groups": ["trainees"]},
}

plugin = SimplePlugin(
    name="identity",
    topics=[
        Topic(
            name="user_logged_in",
            mode="blocking",
            schema=LOGIN_SCHEMA,
            sample=LOGIN_SAMPLE,
            description="After a successful log in, before the user is redirected back.",
            deadline=2.0,
            on_failure="ignore",
            reserved=("/id",),
            profile="jws",
        ),
        Topic(
            name="user_registered",
            mode="blocking",
            schema=LOGIN_SCHEMA,
            sample=LOGIN_SAMPLE,
            description="First access: the account was set up locally from the SSO data.",
            deadline=3.0,
            on_failure="ignore",
            reserved=("/id",),
            profile="jws",
        ),
        Topic(
            name="profile_updated",
            mode="queued",
            schema=PROFILE_SCHEMA,
            sample=PROFILE_SAMPLE,
            description="A user profile was updated or edited; carries the full new profile.",
            profile="jws",
        ),
    ],
)
