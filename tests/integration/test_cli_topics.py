"""`hookruntime topics --json`, run as a child process: every seed topic with its mode, plugin,
scopes and default profile."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

RESOURCE_FAMILIES = {
    "customers": ("created", "updated", "deleted"),
    "events": ("created", "updated", "deleted"),
    "services": ("created", "updated", "deleted"),
    "resources": ("created", "updated", "deleted"),
    "companies": ("created", "updated", "deleted"),
    "managers": ("created", "updated", "deleted"),
    "enterprises": ("updated",),
    "customer_fields": ("created", "updated", "deleted"),
    "shifts": ("created", "updated", "deleted"),
    "notifications": ("created",),
    "service_groups": ("created", "updated", "deleted"),
}

EXPECTED: dict[str, tuple[str, str]] = {
    "user_logged_in": ("blocking", "identity"),
    "user_registered": ("blocking", "identity"),
    "profile_updated": ("queued", "identity"),
    "booking_updated": ("queued", "booking"),
    "booking_state_changed": ("queued", "booking"),
    "before_confirmation": ("blocking", "booking"),
    "before_reminder": ("blocking", "booking"),
    **{
        f"{family}.{action}": ("queued", "booking")
        for family, actions in RESOURCE_FAMILIES.items()
        for action in actions
    },
    **{
        f"people.{a}": ("queued", "workforce")
        for a in ("create", "update", "delete", "bulk_create", "bulk_update", "bulk_delete")
    },
    **{
        name: ("queued", "workforce")
        for name in (
            "punch.create",
            "punch.update",
            "attendance.create",
            "attendance.update",
            "visit.checkin",
            "visit.checkout",
            "visit.update",
        )
    },
    **{
        name: ("queued", "verification")
        for name in (
            "verification.started",
            "verification.completed",
            "verification.failed",
            "liveness.started",
            "liveness.completed",
            "liveness.failed",
            "batch.completed",
            "reference.created",
        )
    },
    **{
        f"webhook.{a}": ("queued", "hookruntime")
        for a in ("created", "updated", "deleted", "test", "disabled")
    },
}


@pytest.fixture(scope="module")
def catalog_json() -> list[dict[str, object]]:
    out = subprocess.run(
        [sys.executable, "-m", "hookruntime.cli", "topics", "--json"],
        check=True,
        capture_output=True,
        text=True,
    )
    return list(json.loads(out.stdout))


def test_topics_json_lists_every_seed_topic_with_mode_and_plugin(catalog_json) -> None:
    listed = {t["name"]: (t["mode"], t["plugin"]) for t in catalog_json}
    assert listed == EXPECTED
    for topic in catalog_json:
        assert {"name", "mode", "plugin", "scopes"} <= set(topic)


def test_resource_topics_carry_the_seed_003_scopes(catalog_json) -> None:
    scopes = {t["name"]: t["scopes"] for t in catalog_json}
    assert scopes["customers.created"] == ["customers"]
    assert scopes["events.deleted"] == ["events", "customers", "resources", "services"]
    assert scopes["services.updated"] == ["resources", "services"]
    assert scopes["managers.created"] == ["bm_managers"]
    assert scopes["shifts.deleted"] == ["shift", "resources"]
    assert scopes["before_confirmation"] == ["events", "customers", "resources", "services"]
    assert scopes["profile_updated"] == []


def test_default_profiles_follow_the_settled_details(catalog_json) -> None:
    profiles = {t["name"]: t["profile"] for t in catalog_json}
    assert profiles["user_logged_in"] == profiles["booking_state_changed"] == "jws"
    assert profiles["punch.create"] == "servicehook"
    assert profiles["liveness.completed"] == "envelope"
    assert profiles["customers.created"] == profiles["webhook.disabled"] == "standard"
