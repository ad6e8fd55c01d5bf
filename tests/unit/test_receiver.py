"""hookruntime.receiver: every profile round-trips, and only VerificationError escapes."""

from __future__ import annotations

import base64
import json

import jose.jws
import pytest

from hookruntime import VerificationError
from hookruntime.profiles import PROFILES, Message
from hookruntime.receiver import Deduplicator, verify

SECRETS = {
    "standard": "whsec_" + base64.b64encode(b"k" * 24).decode(),
    "jws": "signature_secret",
    "servicehook": "servicehook-secret-1234",
    "envelope": "envelope-secret-with-at-least-32-chars",
}
PAYLOAD = {"id": "profile_org_id", "email": "john@doe.com"}


def signed(profile: str, timestamp: float = 1_700_000_000, secrets: list[str] | None = None):
    message = Message(
        "profile_updated",
        "evt_1",
        PAYLOAD,
        secrets or [SECRETS[profile]],
        timestamp,
        "1dc54786-9d69-487a-8c17-407ff20d0bdc",
    )
    return PROFILES[profile].render(message)


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_profile_round_trips(profile: str) -> None:
    request = signed(profile)
    verified = verify(profile, request.headers, request.body, SECRETS[profile], now=1_700_000_010)
    assert verified.payload["email"] == "john@doe.com"
    assert verified.event_id == "evt_1"


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_a_wrong_secret_is_refused(profile: str) -> None:
    request = signed(profile)
    other = PROFILES[profile].generate_secret()
    with pytest.raises(VerificationError):
        verify(profile, request.headers, request.body, other, now=1_700_000_010)


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_a_tampered_body_is_refused(profile: str) -> None:
    request = signed(profile)
    body = request.body.replace(b"john", b"jane")
    if profile == "jws":  # the body is base64url: change one payload character instead
        head, payload, sig = request.body.split(b".")
        body = b".".join(
            [head, payload[:-2] + (b"A" if payload[-2:-1] != b"A" else b"B") + payload[-1:], sig]
        )
    with pytest.raises(VerificationError):
        verify(profile, request.headers, body, SECRETS[profile], now=1_700_000_010)


@pytest.mark.parametrize("profile", ["standard", "servicehook", "envelope"])
def test_tolerance_is_a_parameter(profile: str) -> None:
    request = signed(profile, timestamp=1_700_000_000)
    with pytest.raises(VerificationError, match="outside"):
        verify(profile, request.headers, request.body, SECRETS[profile], now=1_700_001_000)
    verify(
        profile, request.headers, request.body, SECRETS[profile], now=1_700_001_000, tolerance=3600
    )


def test_rotation_any_listed_secret_verifies() -> None:
    old = SECRETS["standard"]
    new = PROFILES["standard"].generate_secret()
    request = signed("standard", secrets=[new, old])
    for secret in (new, old, [new], [PROFILES["standard"].generate_secret(), old]):
        verify("standard", request.headers, request.body, secret, now=1_700_000_000)


GARBAGE = [
    ({}, b""),
    ({}, b"\xff\xfe"),
    ({"webhook-id": "x", "webhook-timestamp": "nope", "webhook-signature": "v1,AAAA"}, b"{}"),
    ({"webhook-id": "x", "webhook-timestamp": "1700000000", "webhook-signature": "v1,!!"}, b"{"),
    ({"X-ServiceHook-Signature": "00", "X-ServiceHook-Timestamp": "yesterday"}, b"{}"),
    ({"X-Signature-SHA256": "sha256=zz"}, b"[1,2,3]"),
    ({}, b"a.b.c"),
    ({}, b"e30.e30.e30"),
    ({}, b"....."),
]


@pytest.mark.parametrize("profile", sorted(PROFILES))
@pytest.mark.parametrize(("headers", "body"), GARBAGE)
def test_only_verification_error_escapes(
    profile: str, headers: dict[str, str], body: bytes
) -> None:
    with pytest.raises(VerificationError):
        verify(profile, headers, body, SECRETS[profile], now=1_700_000_000)


def test_standard_with_a_bad_secret_format_raises_our_error() -> None:
    request = signed("standard")
    with pytest.raises(VerificationError):
        verify("standard", request.headers, request.body, "whsec_***", now=1_700_000_000)


def test_jws_alg_none_is_refused() -> None:
    def b64(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    token = f"{b64({'alg': 'none'})}.{b64(PAYLOAD)}."
    with pytest.raises(VerificationError, match="HS256"):
        verify("jws", {}, token, SECRETS["jws"])


@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
def test_jws_other_algorithms_are_refused(algorithm: str) -> None:
    token = jose.jws.sign(PAYLOAD, SECRETS["jws"], algorithm=algorithm)
    with pytest.raises(VerificationError, match="HS256"):
        verify("jws", {}, token, SECRETS["jws"])


def test_jws_signed_by_another_library_verifies() -> None:
    token = jose.jws.sign(
        {**PAYLOAD, "webhook_request_id": "evt_9"}, SECRETS["jws"], algorithm="HS256"
    )
    assert verify("jws", {}, token, SECRETS["jws"]).event_id == "evt_9"


def test_unknown_profile_is_a_verification_error() -> None:
    with pytest.raises(VerificationError, match="unknown profile"):
        verify("soap", {}, b"", "x")


def test_deduplicator_passes_each_event_id_once_within_its_window() -> None:
    seen = Deduplicator(ttl=10, size=3)
    assert seen.first("a", now=0)
    assert not seen.first("a", now=5)
    assert seen.first("a", now=20)  # expired
    for event_id in ("b", "c", "d"):
        assert seen.first(event_id, now=21)
    assert seen.first("a", now=22)  # evicted by size
    assert seen.first(None)
