"""next_state(): the queued path's pure retry policy."""

from __future__ import annotations

import pytest

from hookruntime.profiles import PROFILES, RetryPolicy
from hookruntime.queue.policy import MAX_RETRY_AFTER, next_state, parse_retry_after

NO_JITTER = {"jitter": lambda: 0.0}
FAIL = (500, None)


def test_2xx_is_delivered_and_nothing_else_is() -> None:
    policy = PROFILES["standard"].retry
    assert next_state(1, 200, None, policy, 0).status == "delivered"
    assert next_state(1, 204, None, policy, 0).status == "delivered"
    for status in (301, 302, 400, 404, 429, 500, 503):
        assert next_state(1, status, None, policy, 0).status == "failed"
    assert next_state(1, None, None, policy, 0).status == "failed"


def test_410_kills_the_delivery_and_disables_the_registration() -> None:
    state = next_state(1, 410, None, PROFILES["standard"].retry, 0)
    assert state.status == "dead" and state.disable


@pytest.mark.parametrize(
    ("profile", "delays"),
    [
        ("standard", [5, 300, 1800, 7200, 18000, 36000, 36000]),
        ("jws", [5, 300, 1800, 7200, 18000, 36000, 36000]),
        ("servicehook", [10, 60, 300, 1800]),
        ("envelope", [1, 2, 4, 8]),
    ],
)
def test_each_profile_follows_its_schedule_then_dies(profile: str, delays: list[int]) -> None:
    policy = PROFILES[profile].retry
    for attempt, delay in enumerate(delays, start=1):
        state = next_state(attempt, *FAIL, policy, 1000.0, **NO_JITTER)
        assert state.status == "failed" and state.next_at == 1000.0 + delay
    assert next_state(len(delays) + 1, *FAIL, policy, 1000.0).status == "dead"


def test_a_registration_schedule_of_four_delays_gives_exactly_five_attempts() -> None:
    policy = RetryPolicy(schedule=(0.05,) * 4, timeout=1)
    statuses = [next_state(n, *FAIL, policy, 0).status for n in range(1, 6)]
    assert statuses == ["failed"] * 4 + ["dead"]


def test_max_attempts_overrides_and_the_last_delay_repeats() -> None:
    policy = RetryPolicy(schedule=(1, 2), timeout=1)
    assert next_state(5, *FAIL, policy, 0, max_attempts=6, **NO_JITTER).next_at == 2
    assert next_state(6, *FAIL, policy, 0, max_attempts=6).status == "dead"
    assert next_state(1, *FAIL, policy, 0, max_attempts=1).status == "dead"


@pytest.mark.parametrize("draw", [0.0, 0.5, 0.999999])
def test_jitter_never_shortens_a_delay_nor_adds_over_20_percent(draw: float) -> None:
    state = next_state(2, *FAIL, RetryPolicy((10, 100), 1), 0, jitter=lambda: draw)
    assert state.next_at is not None and 100 <= state.next_at <= 120


def test_retry_after_is_honoured_and_bounded() -> None:
    policy = RetryPolicy((5,), 1)
    assert next_state(1, 429, 60, policy, 0, **NO_JITTER).next_at == 60
    assert next_state(1, 503, 1, policy, 0, **NO_JITTER).next_at == 5
    huge = next_state(1, 429, 10**9, policy, 0, **NO_JITTER)
    assert huge.next_at == MAX_RETRY_AFTER


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    assert parse_retry_after("120", 0) == 120
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470) == 10
    assert parse_retry_after("soon", 0) is None
    assert parse_retry_after(None, 0) is None
