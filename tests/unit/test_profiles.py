"""Every wire profile, checked by code nobody here wrote: the Standard Webhooks library,
python-jose exactly as seed 001's receiver calls it, joserfc, and the seeds' snippets."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid

import jose.jws
import pytest
from joserfc import jws as rfc_jws
from joserfc.jwk import OctKey
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from hookruntime import ValidationError
from hookruntime.profiles import PROFILES, Message
from hookruntime.profiles.standard import StandardProfile

PUNCH = {"punch": {"id": 2, "punch_type": "IN", "person": {"id": 1, "first_name": "Rohit"}}}


def render(profile: str, secrets: list[str], payload: object = PUNCH, **extra: object):
    message = Message(
        topic="punch.create",
        event_id="evt_01jd0000000000000000000000",
        payload=payload,
        secrets=secrets,
        **extra,
    )  # type: ignore[arg-type]
    return PROFILES[profile].render(message)


# -- standard --------------------------------------------------------------------


def test_standard_reproduces_the_published_vector() -> None:
    signature = StandardProfile.sign(
        "whsec_plJ3nmyCDGBKInavdOK15jsl",
        "msg_loFOjxBNrRLzqYUf",
        "1731705121",
        b'{"event_type":"ping","data":{"success":true}}',
    )
    assert signature == "v1,rAvfW3dJ/X/qxhsaXPOyyCGmRKsaKWcsNccKXlIktD0="


def test_standard_is_verified_by_the_standardwebhooks_library() -> None:
    secret = PROFILES["standard"].generate_secret()
    request = render("standard", [secret])
    body = Webhook(secret).verify(request.body, request.headers)
    assert body["type"] == "punch.create"
    assert body["data"] == PUNCH
    assert request.headers["webhook-id"] == "evt_01jd0000000000000000000000"


def test_standard_sends_both_signatures_during_rotation() -> None:
    new, old, stranger = (PROFILES["standard"].generate_secret() for _ in range(3))
    request = render("standard", [new, old])
    assert len(request.headers["webhook-signature"].split()) == 2
    Webhook(new).verify(request.body, request.headers)
    Webhook(old).verify(request.body, request.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(stranger).verify(request.body, request.headers)


# -- jws ---------------------------------------------------------------------------


def test_jws_is_verified_exactly_as_seed_001_receiver_does() -> None:
    request = render("jws", ["signature_secret"], payload={"id": "profile_org_id"})
    data = request.body.decode()
    payload_str = jose.jws.verify(data, "signature_secret", algorithms=["HS256"])
    payload = json.loads(payload_str.decode("utf-8"))
    assert payload == {
        "id": "profile_org_id",
        "webhook_request_id": "evt_01jd0000000000000000000000",
    }


def test_jws_is_verified_by_joserfc() -> None:
    secret = "a-long-enough-shared-secret-for-hs256-keys"
    request = render("jws", [secret], payload={"id": "u1"})
    token = rfc_jws.deserialize_compact(
        request.body, OctKey.import_key(secret), algorithms=["HS256"]
    )
    assert json.loads(token.payload)["id"] == "u1"
    assert token.headers()["alg"] == "HS256"


def test_jws_refuses_a_payload_that_is_not_an_object() -> None:
    with pytest.raises(ValidationError, match="JSON objects only"):
        render("jws", ["signature_secret"], payload=[1, 2])


# -- servicehook -------------------------------------------------------------------


def test_servicehook_is_verified_by_seed_000_snippet() -> None:
    SECRET_KEY = "WEBHOOK SECRET LONG"
    request = render("servicehook", [SECRET_KEY], integration_id=str(uuid.uuid4()))
    request_data = request.body.decode()
    signature = hmac.new(
        key=SECRET_KEY.encode("utf-8"), msg=request_data.encode("utf-8"), digestmod=hashlib.sha256
    ).hexdigest()
    assert signature == request.headers["x-servicehook-signature"]
    assert json.loads(request.body) == PUNCH  # the data as is, no wrapper added


def test_servicehook_sends_all_four_seed_headers_and_the_event_id() -> None:
    integration = "1dc54786-9d69-487a-8c17-407ff20d0bdc"
    request = render(
        "servicehook", ["WEBHOOK SECRET LONG"], integration_id=integration, timestamp=1661708219.5
    )
    headers = request.headers
    assert headers["x-servicehook-event"] == "punch.create"
    assert headers["x-servicehook-timestamp"] == "2022-08-28T17:36:59Z"
    assert headers["x-servicehook-uuid"] == integration
    assert re.fullmatch(r"[0-9a-f]{64}", headers["x-servicehook-signature"])
    assert headers["x-servicehook-id"] == "evt_01jd0000000000000000000000"
    assert headers["content-type"] == "application/json"


# -- envelope ----------------------------------------------------------------------

SECRET_32 = "your-secret-key-min-32-chars-ok!"


def verify_webhook_signature(payload: bytes, signature: str, secret: str) -> bool:
    """Seed 002's verifier, as published."""
    expected_signature = hmac.new(secret.encode("utf-8"), payload, hashlib.sha256).hexdigest()
    return hmac.compare_digest(signature, f"sha256={expected_signature}")


def test_envelope_is_verified_by_seed_002_function() -> None:
    request = render("envelope", [SECRET_32])
    assert verify_webhook_signature(request.body, request.headers["x-signature-sha256"], SECRET_32)
    assert not verify_webhook_signature(
        request.body + b" ", request.headers["x-signature-sha256"], SECRET_32
    )


def test_envelope_has_the_seed_fields_in_order_and_an_inner_signature() -> None:
    request = render("envelope", [SECRET_32], timestamp=1769492826)
    envelope = json.loads(request.body)
    assert list(envelope) == ["event_type", "event_id", "timestamp", "data", "signature"]
    assert envelope["event_type"] == "punch.create"
    assert envelope["event_id"] == "evt_01jd0000000000000000000000"
    assert envelope["timestamp"] == "2026-01-27T05:47:06Z"
    assert envelope["data"] == PUNCH
    inner = {k: envelope[k] for k in ("event_type", "event_id", "timestamp", "data")}
    compact = json.dumps(inner, separators=(",", ":")).encode()
    assert verify_webhook_signature(compact, envelope["signature"], SECRET_32)


# -- secrets and retry defaults ----------------------------------------------------


@pytest.mark.parametrize(
    ("profile", "short"),
    [
        ("standard", "whsec_c2hvcnQ="),
        ("jws", "short"),
        ("servicehook", "x" * 15),
        ("envelope", "x" * 31),
    ],
)
def test_each_profile_rejects_a_secret_too_short_and_accepts_its_own(
    profile: str, short: str
) -> None:
    implementation = PROFILES[profile]
    assert implementation.secret_problem(short)
    assert implementation.secret_problem(implementation.generate_secret()) is None


def test_retry_defaults_follow_the_design_table() -> None:
    assert PROFILES["standard"].retry.schedule == (5, 300, 1800, 7200, 18000, 36000, 36000)
    assert PROFILES["standard"].retry.attempts == 8
    assert PROFILES["jws"].retry == PROFILES["standard"].retry
    assert PROFILES["servicehook"].retry.schedule == (10, 60, 300, 1800)
    assert PROFILES["servicehook"].retry.timeout == 30
    assert PROFILES["envelope"].retry.schedule == (1, 2, 4, 8)
    assert PROFILES["envelope"].retry.attempts == 5
    assert PROFILES["envelope"].retry.timeout == 10


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_a_payload_given_serialised_renders_byte_for_byte_the_same(profile: str) -> None:
    secret = PROFILES[profile].generate_secret()
    payload = {"punch": {"id": 2, "name": "Rohit ✓", "tags": []}}
    raw = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    plain = Message("punch.create", "evt_1", payload, [secret], 1_700_000_000.0, "u")
    given = Message("punch.create", "evt_1", None, [secret], 1_700_000_000.0, "u", raw)
    assert PROFILES[profile].render(plain) == PROFILES[profile].render(given)


def test_jws_with_an_empty_object_still_carries_the_request_id() -> None:
    given = Message("x", "evt_1", None, ["signature_secret"], raw=b"{}")
    token = PROFILES["jws"].render(given).body.decode()
    assert json.loads(jose.jws.verify(token, "signature_secret", algorithms=["HS256"])) == {
        "webhook_request_id": "evt_1"
    }
