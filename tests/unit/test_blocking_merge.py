"""Pure parts of the blocking path: merge patches, answers, the breaker."""

from __future__ import annotations

import pytest

from hookruntime.blocking.answer import ALLOW, InvalidAnswer, read_answer
from hookruntime.blocking.breaker import Breaker, BreakerPolicy
from hookruntime.blocking.merge import apply_merge_patch, combine, touches
from hookruntime.receiver import sign_answer


@pytest.mark.parametrize(
    ("doc", "patch", "expected"),
    [  # RFC 7386 appendix A
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"a": "foo"}, None, None),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_merge_patch_follows_rfc_7386(doc: object, patch: object, expected: object) -> None:
    assert apply_merge_patch(doc, patch) == expected


def test_earlier_patch_wins_a_conflict_and_it_is_reported() -> None:
    merged, conflicts = combine(
        [
            ("reg_a", {"profile": {"role": "admin"}, "tags": ["x"]}),
            ("reg_b", {"profile": {"role": "guest", "team": "b"}, "tags": None}),
            ("reg_c", {"profile": None}),
        ]
    )
    assert merged == {"profile": {"role": "admin", "team": "b"}, "tags": ["x"]}
    assert [(c.path, c.kept_by, c.dropped_from) for c in conflicts] == [
        ("/profile/role", "reg_a", "reg_b"),
        ("/tags", "reg_a", "reg_b"),
        ("/profile", "reg_a", "reg_c"),
    ]


def test_touches_sees_writes_at_inside_and_above_a_reserved_path() -> None:
    assert touches({"id": "x"}, ["/id"]) == "/id"
    assert touches({"customer": {"id": 1}}, ["/customer"]) == "/customer"
    assert touches({"customer": None}, ["/customer/id"]) == "/customer/id"
    assert touches({"customer": {"name": "n"}}, ["/customer/id"]) is None
    assert touches({"a~b": 1}, ["/a~0b"]) == "/a~0b"


@pytest.mark.parametrize("body", [b"", b"  ", b'{"ok": true}', b"{}"])
def test_empty_and_ok_answers_allow(body: bytes) -> None:
    assert read_answer(200, body) == ALLOW
    assert read_answer(204, b"") == ALLOW


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html>", "not JSON"),
        (b"[1]", "must be a JSON object, not list"),
        (b'{"decision": "maybe"}', "decision must be 'allow' or 'deny', not 'maybe'"),
        (b'{"reason": 5}', "reason must be a string"),
        (b'{"patch": [1]}', "patch must be a JSON object"),
    ],
)
def test_wrong_answers_are_invalid_with_a_precise_message(body: bytes, message: str) -> None:
    with pytest.raises(InvalidAnswer, match=message):
        read_answer(200, body)


def test_signed_answers_verify_with_the_shared_secret() -> None:
    token = sign_answer({"decision": "deny", "reason": "r"}, "signature_secret", "call_1")
    assert read_answer(200, token, ["signature_secret"], request_id="call_1").decision == "deny"
    with pytest.raises(InvalidAnswer, match="response signature"):
        read_answer(200, token, ["another_secret_x"], request_id="call_1")
    with pytest.raises(InvalidAnswer, match="response signature"):
        read_answer(200, b'{"decision":"allow"}', ["signature_secret"])
    with pytest.raises(InvalidAnswer, match="body is empty"):
        read_answer(204, b"", ["signature_secret"])


def test_breaker_opens_probes_and_closes() -> None:
    breaker = Breaker(BreakerPolicy(window=10, min_calls=4, ratio=0.5, cooldown=5))
    for moment, ok in [(0, True), (1, False), (2, True)]:
        breaker.record(ok, now=moment)
    assert breaker.state == "closed"  # below min_calls
    breaker.record(False, now=3)
    assert breaker.state == "open" and not breaker.allow(now=4)
    assert breaker.allow(now=8.1) and breaker.state == "half_open"
    assert not breaker.allow(now=8.2)  # one probe at a time
    breaker.record(False, now=8.3)
    assert breaker.state == "open" and not breaker.allow(now=9)
    assert breaker.allow(now=13.4)
    breaker.record(True, now=13.5)
    assert breaker.state == "closed" and breaker.allow(now=13.6)


def test_breaker_forgets_outcomes_older_than_its_window() -> None:
    breaker = Breaker(BreakerPolicy(window=10, min_calls=2, ratio=0.5, cooldown=5))
    breaker.record(False, now=0)
    breaker.record(True, now=20)
    breaker.record(True, now=21)
    assert breaker.state == "closed"
