"""hookruntime.testing.read_request: what a receiver in a test was sent, in any profile."""

from __future__ import annotations

import base64

import pytest

from hookruntime.errors import VerificationError
from hookruntime.testing import Delivered, Received, read_request, signed_request

SECRETS = {
    "standard": "whsec_" + base64.b64encode(b"k" * 24).decode(),
    "jws": "signature_secret",
    "servicehook": "servicehook-secret-1234",
    "envelope": "envelope-secret-with-at-least-32-chars",
}


@pytest.mark.parametrize("profile", sorted(SECRETS))
def test_read_request_tells_each_profile_by_its_headers_with_or_without_the_secret(
    profile: str,
) -> None:
    headers, body = signed_request(
        profile, {"id": "u1"}, SECRETS[profile], topic="profile_updated", event_id="evt_1"
    )
    request = Received("POST", "/hook", {k.lower(): v for k, v in headers.items()}, body, 0.0)
    for secret in (None, SECRETS[profile]):
        read = read_request(request, secret)
        assert read.data == {"id": "u1"} and read.event_id == "evt_1"
        assert read.topic == (None if profile == "jws" else "profile_updated")
    with pytest.raises(VerificationError):
        read_request(request, SECRETS[profile] + "x")


def test_read_request_gives_a_body_of_no_known_profile_as_json_or_bytes() -> None:
    as_json = Received("POST", "/hook", {}, b'{"a": 1}', 0.0)
    assert read_request(as_json) == Delivered(None, None, {"a": 1})
    assert read_request(Received("POST", "/hook", {}, b"not json", 0.0)).data == b"not json"
