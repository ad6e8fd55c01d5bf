"""The catalog the built-in plugins declare: samples from the seeds, schemas, deadlines, names."""

from __future__ import annotations

import json

import pytest

from hookruntime import HookRuntime, Topic, UnknownTopicError, ValidationError
from hookruntime.plugins import discover

SEED_000_PUNCH = (
    '{"punch":{"id":2,"punched_at":"2022-08-28T17:36:59.163781Z","punch_type":"IN",'
    '"photo_url":"","body_temp":null,"body_temp_unit":null,"body_temp_status":null,'
    '"person":{"id":1,"first_name":"Rohit","last_name":"","mobile_number":"+91 9999999999",'
    '"email":"","dob":null,"primary_face_image_url":"","picture_url":null,'
    '"people_custom_data":{"data":[],"form_schema_revision_id":1},'
    '"people_form_schema_revision_id":1,"is_blacklisted":false,'
    '"created_at":"2023-06-14T06:23:40.675961Z"},"shift":{"id":1,"name":"Flexible Shift",'
    '"code":"flexible-shift","type":"FLEXIBLE","created_at":"2022-02-02T12:12:09.798381Z",'
    '"updated_at":"2022-02-02T12:12:09.798398Z"},"attendance":{"id":1,'
    '"attendance_date":"2022-08-28","shift_id":1,"person_id":1,'
    '"created_at":"2022-08-28T04:06:37.512632Z","updated_at":"2022-08-28T17:36:59.683209Z"},'
    '"created_at":"2022-08-28T17:36:59.540351Z","updated_at":"2022-08-28T17:36:59.540375Z",'
    '"space_id":1,"organization_id":1}}'
)


def test_samples_come_from_the_seeds() -> None:
    catalog = HookRuntime(plugins=discover()).catalog
    punch = catalog["punch.create"].sample
    assert json.dumps(punch, separators=(",", ":")) == SEED_000_PUNCH
    assert catalog["profile_updated"].sample == {
        "auditLog": [],
        "id": "profile_org_id",
        "email": "john@doe.com",
        "rev": "1-1324",
        "firstName": "John",
        "lastName": "Doe",
        "userFields": [],
    }
    assert catalog["verification.completed"].sample["verification_score"] == 0.9234
    assert catalog["liveness.failed"].sample["failure_reason"] == "photo_attack_detected"
    assert catalog["batch.completed"].sample["results"][0]["image_id"] == "img_001"
    assert catalog["webhook.test"].sample["message"] == "Webhook test successful"


def test_blocking_topics_have_deadlines_and_failure_policies() -> None:
    catalog = HookRuntime().catalog
    for topic in catalog.values():
        if topic.blocking:
            assert topic.deadline and topic.on_failure in ("ignore", "deny")
            assert "/id" in topic.reserved
        else:
            assert topic.deadline is None


def test_topic_validate_names_the_path_that_breaks_the_schema() -> None:
    catalog = HookRuntime().catalog
    with pytest.raises(ValidationError) as caught:
        catalog["punch.create"].validate({"punch": {"no_id": 1}})
    assert caught.value.errors[0].field == "data.punch"
    assert '"id" is a required property' in caught.value.errors[0].message
    catalog["punch.create"].validate(catalog["punch.create"].sample)


def test_an_unknown_topic_names_the_close_ones() -> None:
    catalog = HookRuntime().catalog
    with pytest.raises(UnknownTopicError, match="did you mean 'profile_updated'"):
        catalog.get_topic("profile_uploaded")
    assert isinstance(catalog.get_topic("punch.create"), Topic)
