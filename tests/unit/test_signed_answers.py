"""Signed answers to blocking calls are bound to the call they answer: the JWS payload
names the request's id (``webhook_request_id``) and carries a fresh ``iat``; an answer
signed for another call, a stale one, or one missing either is ``invalid``."""

from __future__ import annotations

import time

import pytest

from hookruntime import ValidationError
from hookruntime.blocking.answer import InvalidAnswer, read_answer
from hookruntime.profiles.base import compact_json
from hookruntime.profiles.jws import jws_sign
from hookruntime.receiver import sign_answer

SECRET = "signature_secret"
ELEVATED = {"decision": "allow", "patch": {"role": "admin"}}


def test_an_answer_signed_for_this_request_and_now_is_accepted() -> None:
    token = sign_answer(ELEVATED, SECRET, "call_1")
    answer = read_answer(200, token, [SECRET], request_id="call_1")
    assert answer.decision == "allow" and answer.patch == {"role": "admin"}


def test_an_answer_signed_for_another_request_is_invalid() -> None:
    token = sign_answer(ELEVATED, SECRET, "call_1")
    with pytest.raises(InvalidAnswer, match="answers request 'call_1', not this call's 'call_2'"):
        read_answer(200, token, [SECRET], request_id="call_2")


@pytest.mark.parametrize("age", [-301.0, 301.0, 86_400.0])
def test_an_answer_signed_more_than_300_s_away_is_invalid(age: float) -> None:
    now = time.time()
    token = sign_answer(ELEVATED, SECRET, "call_1", now=now - age)
    with pytest.raises(InvalidAnswer, match="iat is .* from now; at most 300 s"):
        read_answer(200, token, [SECRET], request_id="call_1", now=now)
    assert read_answer(200, token, [SECRET], request_id="call_1", now=now - age + 299).patch


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"decision": "allow"}, "lacks webhook_request_id"),
        ({"decision": "allow", "iat": 0.0}, "lacks webhook_request_id"),
        ({"decision": "allow", "webhook_request_id": "call_1"}, "lacks a numeric iat"),
        ({"webhook_request_id": "call_1", "iat": "now"}, "lacks a numeric iat"),
        ({"webhook_request_id": "call_1", "iat": True}, "lacks a numeric iat"),
        ({"webhook_request_id": 1, "iat": 0}, "lacks webhook_request_id"),
    ],
    ids=["neither", "no-id", "no-iat", "text-iat", "bool-iat", "numeric-id"],
)
def test_a_signed_answer_missing_its_binding_is_invalid(claims: dict, message: str) -> None:
    token = jws_sign(compact_json(claims), SECRET)
    with pytest.raises(InvalidAnswer, match=message):
        read_answer(200, token, [SECRET], request_id="call_1")


def test_signing_an_answer_needs_the_request_id() -> None:
    with pytest.raises(ValidationError, match="request_id"):
        sign_answer(ELEVATED, SECRET, None)
