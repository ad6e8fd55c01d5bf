"""The control plane on both engines: registrations with precise validation and rev checks."""

from __future__ import annotations

import pytest

from hookruntime import (
    ConflictError,
    HookRuntime,
    NotFoundError,
    ValidationError,
)

pytestmark = pytest.mark.anyio
URL = "https://crm.example/hooks"


async def test_seed_001_minimal_registration_gets_jws_and_an_id_and_rev(
    runtime: HookRuntime,
) -> None:
    reg = await runtime.registrations.create(
        org="acme", topics="profile_updated", url=URL, secret="signature_secret"
    )
    assert reg.id.startswith("reg_") and reg.rev
    assert reg.profile == "jws"
    assert reg.secret == "signature_secret"
    read = await runtime.registrations.get(reg.id, org="acme")
    assert read.secret is None and read.rev == reg.rev and read.topics == ("profile_updated",)


@pytest.mark.parametrize(
    ("topics", "profile"),
    [
        (["punch.create", "visit.checkin"], "servicehook"),
        (["liveness.completed"], "envelope"),
        (["customers.created"], "standard"),
        (["webhook.disabled"], "standard"),
        (["punch.create", "liveness.completed"], "standard"),  # disagree: standard
    ],
)
async def test_default_profile_comes_from_the_topics(
    runtime: HookRuntime, topics: list[str], profile: str
) -> None:
    reg = await runtime.registrations.create(org="acme", topics=topics, url=URL)
    assert reg.profile == profile
    assert reg.secret and runtime_profile_accepts(profile, reg.secret)


def runtime_profile_accepts(profile: str, secret: str) -> bool:
    from hookruntime.profiles import PROFILES

    return PROFILES[profile].secret_problem(secret) is None


async def test_unknown_topic_is_named_with_a_suggestion(runtime: HookRuntime) -> None:
    with pytest.raises(ValidationError) as caught:
        await runtime.registrations.create(org="acme", topics=["profile_uploaded"], url=URL)
    assert caught.value.errors[0].field == "topics.0"
    assert "did you mean 'profile_updated'" in str(caught.value)


async def test_every_invalid_field_is_reported_at_once(runtime: HookRuntime) -> None:
    with pytest.raises(ValidationError) as caught:
        await runtime.registrations.create(
            org="acme",
            topics=["punch.create"],
            url="ftp://files.example/x",
            profile="envelope",
            secret="too-short",
            on_failure="explode",
            timeout=0,
            retry_schedule=[-1],
            max_attempts=0,
            headers={"Content-Type": "x", "X-Ok": ""},
        )
    fields = {e.field for e in caught.value.errors}
    assert fields == {
        "url",
        "secret",
        "on_failure",
        "timeout",
        "retry_schedule",
        "max_attempts",
        "headers.Content-Type",
        "headers.X-Ok",
    }
    messages = str(caught.value)
    assert "http:// or https://" in messages
    assert "'envelope' needs a secret of at least 32 characters" in messages


@pytest.mark.parametrize(
    ("kwargs", "field", "fragment"),
    [
        ({"profile": "soap"}, "profile", "unknown profile 'soap'"),
        ({"url": "https://user:pw@crm.example/"}, "url", "credentials"),
        ({"url": "https:///nohost"}, "url", "no host"),
        ({"topics": []}, "topics", "at least one topic"),
        ({"profile": "standard", "secret": "not-whsec!"}, "secret", "whsec_"),
        ({"priority": "high"}, "priority", "integer"),
        ({"org": "bad org!"}, "org", "letters, digits"),
    ],
)
async def test_precise_messages(
    runtime: HookRuntime, kwargs: dict[str, object], field: str, fragment: str
) -> None:
    arguments: dict[str, object] = {
        "org": "acme",
        "topics": ["profile_updated"],
        "url": URL,
        **kwargs,
    }
    with pytest.raises(ValidationError) as caught:
        await runtime.registrations.create(**arguments)  # type: ignore[arg-type]
    assert [e.field for e in caught.value.errors] == [field]
    assert fragment in caught.value.errors[0].message


async def test_topic_scopes_are_enforced_for_api_callers(runtime: HookRuntime) -> None:
    with pytest.raises(ValidationError, match="needs scope\\(s\\) resources, services"):
        await runtime.registrations.create(
            org="acme", topics=["services.created"], url=URL, scopes=["webhooks:manage"]
        )
    reg = await runtime.registrations.create(
        org="acme",
        topics=["services.created"],
        url=URL,
        scopes=["webhooks:manage", "resources", "services"],
    )
    assert reg.topics == ("services.created",)


async def test_update_needs_the_current_rev_and_changes_it(runtime: HookRuntime) -> None:
    reg = await runtime.registrations.create(org="acme", topics=["profile_updated"], url=URL)
    updated = await runtime.registrations.update(
        reg.id, org="acme", rev=reg.rev, active=False, topics=["booking_updated"]
    )
    assert updated.rev != reg.rev and not updated.active
    assert updated.topics == ("booking_updated",)
    with pytest.raises(ConflictError, match="stale"):
        await runtime.registrations.update(reg.id, org="acme", rev=reg.rev, priority=3)
    assert [
        r.id for r in await runtime.registrations.list(org="acme", topic="booking_updated")
    ] == [reg.id]
    assert await runtime.registrations.list(org="acme", topic="profile_updated") == []


async def test_update_validates_the_merged_registration(runtime: HookRuntime) -> None:
    reg = await runtime.registrations.create(
        org="acme", topics=["profile_updated"], url=URL, secret="signature_secret"
    )
    with pytest.raises(ValidationError, match="'envelope' needs a secret of at least 32"):
        await runtime.registrations.update(reg.id, org="acme", rev=reg.rev, profile="envelope")
    with pytest.raises(ValidationError, match="unknown field"):
        await runtime.registrations.update(reg.id, org="acme", rev=reg.rev, org_id="evil")
    changed = await runtime.registrations.update(
        reg.id, org="acme", rev=reg.rev, profile="envelope", secret="e" * 32
    )
    assert changed.secret == "e" * 32


async def test_another_orgs_registration_is_not_found(runtime: HookRuntime) -> None:
    reg = await runtime.registrations.create(org="acme", topics=["profile_updated"], url=URL)
    with pytest.raises(NotFoundError):
        await runtime.registrations.get(reg.id, org="globex")
    with pytest.raises(NotFoundError):
        await runtime.registrations.update(reg.id, org="globex", rev=reg.rev, active=False)
    with pytest.raises(NotFoundError):
        await runtime.registrations.delete(reg.id, org="globex")
    assert await runtime.registrations.list(org="globex") == []


async def test_delete_with_a_stale_rev_is_a_conflict(runtime: HookRuntime) -> None:
    reg = await runtime.registrations.create(org="acme", topics=["profile_updated"], url=URL)
    current = await runtime.registrations.update(reg.id, org="acme", rev=reg.rev, priority=1)
    with pytest.raises(ConflictError):
        await runtime.registrations.delete(reg.id, org="acme", rev=reg.rev)
    await runtime.registrations.delete(reg.id, org="acme", rev=current.rev)
    with pytest.raises(NotFoundError):
        await runtime.registrations.get(reg.id, org="acme")


async def test_list_pages_in_creation_order(runtime: HookRuntime) -> None:
    ids = [
        (await runtime.registrations.create(org="acme", topics=["punch.create"], url=URL)).id
        for _ in range(5)
    ]
    first = await runtime.registrations.list(org="acme", limit=2)
    rest = await runtime.registrations.list(org="acme", limit=10, after=first[-1].id)
    assert [r.id for r in first + rest] == ids


async def test_rotation_keeps_the_old_secret_signing_for_a_grace_period(
    runtime: HookRuntime,
) -> None:
    reg = await runtime.registrations.create(org="acme", topics=["customers.created"], url=URL)
    rotated = await runtime.registrations.rotate_secret(reg.id, org="acme", rev=reg.rev)
    assert rotated.secret and rotated.secret != reg.secret and rotated.rev != reg.rev
    async with runtime.database.session() as session:
        from sqlalchemy import select

        from hookruntime.store.models import REGISTRATIONS

        row = (await session.execute(select(REGISTRATIONS))).mappings().one()
    assert runtime.registrations.secrets(row) == [rotated.secret, reg.secret]
    assert runtime.registrations.secrets(row, now=row["previous_secret_until"] + 1) == [
        rotated.secret
    ]


async def test_custom_headers_are_returned_on_creation_only(runtime: HookRuntime) -> None:
    reg = await runtime.registrations.create(
        org="acme", topics=["customers.created"], url=URL, headers={"X-Timify-Key": "abc123"}
    )
    assert reg.headers == {"X-Timify-Key": "abc123"}
    read = await runtime.registrations.get(reg.id, org="acme")
    assert read.headers is None and read.header_names == ("X-Timify-Key",)
    assert "headers" not in read.to_dict() and "secret" not in read.to_dict()


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        (" " * 40, "must not be blank"),
        ("\t\n" * 20, "must not be blank"),
        ("a" * 39 + "\x00", "without control characters"),
        ("a" * 20 + "\x1b[31m" + "a" * 20, "without control characters"),
        ("a" * 39 + "\ud800", "without control characters"),
    ],
)
async def test_blank_or_control_character_secrets_are_refused(
    runtime: HookRuntime, secret: str, message: str
) -> None:
    with pytest.raises(ValidationError, match=message) as refused:
        await runtime.registrations.create(
            org="acme", topics=["profile_updated"], url=URL, secret=secret
        )
    assert [e.field for e in refused.value.errors] == ["secret"]
    reg = await runtime.registrations.create(org="acme", topics=["profile_updated"], url=URL)
    with pytest.raises(ValidationError, match=message):
        await runtime.registrations.rotate_secret(reg.id, org="acme", secret=secret)
    assert await runtime.registrations.list(org="acme") == [
        await runtime.registrations.get(reg.id, org="acme")
    ]


async def test_the_profiles_length_rule_still_holds(runtime: HookRuntime) -> None:
    with pytest.raises(ValidationError, match="at least 32 characters"):
        await runtime.registrations.create(
            org="acme", topics=["liveness.completed"], url=URL, secret="s" * 31
        )
    reg = await runtime.registrations.create(
        org="acme", topics=["liveness.completed"], url=URL, secret="with spaces inside " * 2
    )
    assert reg.secret == "with spaces inside " * 2


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"topics": 5}, "topics"),
        ({"topics": [{"a": 1}]}, "topics.0"),
        ({"topics": [f"t{i}" for i in range(101)]}, "topics"),
        ({"headers": {f"X-H{i}": "v" for i in range(5000)}}, "headers"),
        ({"timeout": 10**400}, "timeout"),
        ({"retry_schedule": [10**400]}, "retry_schedule"),
        ({"description": "a\x00b"}, "description"),
        ({"headers": {"X-Token": "abc\x01"}}, "headers.X-Token"),
        ({"headers": {"X-Token": "abc\r\nX-Other: 1"}}, "headers.X-Token"),
    ],
)
async def test_wrong_types_are_field_errors_not_crashes(
    runtime: HookRuntime, changes: dict[str, object], field: str
) -> None:
    values: dict[str, object] = {"topics": ["profile_updated"], "url": URL, **changes}
    with pytest.raises(ValidationError) as refused:
        await runtime.registrations.create(org="acme", **values)  # type: ignore[arg-type]
    assert [e.field for e in refused.value.errors] == [field]


async def test_rotation_checks_its_arguments_types(runtime: HookRuntime) -> None:
    reg = await runtime.registrations.create(org="acme", topics=["profile_updated"], url=URL)
    for arguments in ({"grace": "x"}, {"grace": True}, {"rev": 5}, {"secret": 5}):
        with pytest.raises(ValidationError):
            await runtime.registrations.rotate_secret(reg.id, org="acme", **arguments)
    assert (await runtime.registrations.get(reg.id, org="acme")).rev == reg.rev
