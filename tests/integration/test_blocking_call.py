"""runtime.call against real loopback receivers: deadlines, precedence, merge, policies."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack

import anyio
import pytest
from sqlalchemy import text

from hookruntime import HookRuntime, ReentrancyError, ValidationError
from hookruntime.blocking import BreakerPolicy, serving_hook
from hookruntime.receiver import verify
from hookruntime.store.models import ATTEMPTS
from hookruntime.testing import LoopbackReceiver, Received, Reply

pytestmark = pytest.mark.anyio

CLAIMS = {"id": "u1", "email": "john@doe.com", "firstName": "John"}
SECRET = "signature_secret"
#: Slack for scheduling on a loaded 2-core CI machine: correctness bounds, not timing goals.
SLACK = 0.25


class Receivers:
    """Starts loopback receivers and registers each for ``user_logged_in`` in order."""

    def __init__(self, runtime: HookRuntime, stack: AsyncExitStack) -> None:
        self.runtime = runtime
        self.stack = stack

    async def add(self, handler: Callable[[Received], object], **options: object):
        receiver = await self.stack.enter_async_context(LoopbackReceiver(handler))  # type: ignore[arg-type]
        options.setdefault("secret", SECRET)
        reg = await self.runtime.registrations.create(
            org="acme",
            topics=["user_logged_in"],
            url=receiver.url,
            **options,  # type: ignore[arg-type]
        )
        return receiver, reg


@pytest.fixture
async def hooks(sqlite_runtime: HookRuntime) -> AsyncIterator[Receivers]:
    async with AsyncExitStack() as stack:
        yield Receivers(sqlite_runtime, stack)


async def timed_call(runtime: HookRuntime, deadline: float | None = None, data=CLAIMS):
    started = time.perf_counter()
    result = await runtime.call("user_logged_in", data, org="acme", deadline=deadline)
    return result, time.perf_counter() - started


# -- deadline against hostile receivers ---------------------------------------------


@pytest.mark.parametrize(
    ("reply", "status"),
    [
        (Reply.hang(), "timeout"),
        (Reply.trickle(interval=0.05), "timeout"),
        (Reply.huge(100 * 1024 * 1024), "invalid"),
        (Reply.huge(100 * 1024 * 1024, declared=False), "invalid"),
        (Reply(delay=5), "timeout"),
    ],
    ids=["hang", "trickle", "huge-body", "huge-undeclared-body", "slow"],
)
async def test_call_returns_by_the_deadline_whatever_the_receiver_does(
    hooks: Receivers, reply: Reply, status: str
) -> None:
    await hooks.add(lambda _r: reply)
    result, elapsed = await timed_call(hooks.runtime, deadline=0.3)
    assert elapsed < 0.3 + SLACK
    assert [o.status for o in result.outcomes] == [status]
    assert result.allowed and result.partial  # default policy of user_logged_in: ignore


@pytest.mark.parametrize("declared", [True, False])
async def test_a_huge_body_is_cut_at_the_cap(hooks: Receivers, declared: bool) -> None:
    await hooks.add(lambda _r: Reply.huge(100 * 1024 * 1024, declared=declared))
    result, elapsed = await timed_call(hooks.runtime, deadline=2.0)
    assert result.outcomes[0].status == "invalid"
    assert "262144-byte cap" in (result.outcomes[0].detail or "")
    assert elapsed < 1.0


async def test_a_refused_connection_is_an_error_not_a_wait(
    hooks: Receivers, refused_port: int
) -> None:
    await hooks.runtime.registrations.create(
        org="acme",
        topics=["user_logged_in"],
        url=f"http://127.0.0.1:{refused_port}/hook",
        secret=SECRET,
    )
    result, elapsed = await timed_call(hooks.runtime, deadline=1.0)
    assert result.outcomes[0].status == "error"
    assert "cannot connect" in (result.outcomes[0].detail or "")
    assert elapsed < 0.5


async def test_a_listener_that_never_accepts_times_out(hooks: Receivers) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(0)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
        await hooks.runtime.registrations.create(
            org="acme", topics=["user_logged_in"], url=url, secret=SECRET
        )
        result, elapsed = await timed_call(hooks.runtime, deadline=0.3)
    assert result.outcomes[0].status == "timeout"
    assert elapsed < 0.3 + SLACK


async def test_a_tighter_registration_timeout_applies(hooks: Receivers) -> None:
    await hooks.add(lambda _r: Reply.hang(), timeout=0.1)
    result, elapsed = await timed_call(hooks.runtime, deadline=2.0)
    assert result.outcomes[0].status == "timeout" and elapsed < 0.1 + SLACK


# -- precedence, cancellation, merge order ------------------------------------------


@pytest.mark.parametrize("order", list(itertools.permutations(["deny-a", "deny-b", "allow"])))
async def test_deny_wins_and_the_first_deny_in_order_gives_the_reason(
    hooks: Receivers, order: tuple[str, ...]
) -> None:
    for priority, name in enumerate(order):
        delay = random.uniform(0, 0.05)
        if name == "allow":
            await hooks.add(
                lambda _r, d=delay: Reply.json({"patch": {"x": 1}}, delay=d), priority=priority
            )
        else:
            await hooks.add(
                lambda _r, d=delay, n=name: Reply.json(
                    {"decision": "deny", "reason": n, "user_message": f"msg {n}"}, delay=d
                ),
                priority=priority,
            )
    result, _ = await timed_call(hooks.runtime, deadline=2.0)
    first_deny = next(n for n in order if n.startswith("deny"))
    assert not result.allowed
    assert result.reason == first_deny and result.user_message == f"msg {first_deny}"
    assert result.patch == {}


async def test_receivers_still_running_are_cancelled_once_a_deny_decides(
    hooks: Receivers,
) -> None:
    await hooks.add(lambda _r: Reply.json({"decision": "deny", "reason": "no"}), priority=0)
    await hooks.add(lambda _r: Reply.hang(), priority=1)
    result, elapsed = await timed_call(hooks.runtime, deadline=2.0)
    assert elapsed < 0.5
    assert [o.status for o in result.outcomes] == ["deny", "cancelled"]
    assert not result.partial


async def test_a_later_deny_waits_for_earlier_receivers(hooks: Receivers) -> None:
    await hooks.add(
        lambda _r: Reply.json({"decision": "deny", "reason": "first"}, delay=0.2), priority=0
    )
    await hooks.add(lambda _r: Reply.json({"decision": "deny", "reason": "second"}), priority=1)
    await hooks.add(lambda _r: Reply.hang(), priority=2)
    result, elapsed = await timed_call(hooks.runtime, deadline=2.0)
    assert result.reason == "first"
    assert [o.status for o in result.outcomes] == ["deny", "deny", "cancelled"]
    assert 0.2 <= elapsed < 0.2 + SLACK


async def test_merge_order_does_not_depend_on_completion_order(hooks: Receivers) -> None:
    delays = [0.06, 0.0, 0.03]
    for priority, delay in enumerate(delays):
        await hooks.add(
            lambda _r, p=priority, d=delay: Reply.json(
                {"patch": {"role": f"from-{p}", f"only_{p}": True}},
                delay=d + random.uniform(0, 0.02),
            ),
            priority=priority,
        )
    for _ in range(5):
        result, _ = await timed_call(hooks.runtime, deadline=2.0)
        assert result.patch == {"role": "from-0", "only_0": True, "only_1": True, "only_2": True}
        assert [c.path for c in result.conflicts] == ["/role", "/role"]
        assert result.apply()["role"] == "from-0"


async def test_equal_priorities_fall_back_to_creation_order(hooks: Receivers) -> None:
    await hooks.add(lambda _r: Reply.json({"patch": {"k": "older"}}, delay=0.05))
    await hooks.add(lambda _r: Reply.json({"patch": {"k": "newer"}}))
    result, _ = await timed_call(hooks.runtime)
    assert result.patch == {"k": "older"}
    assert result.conflicts[0].kept_by == result.outcomes[0].registration_id


async def test_a_patch_on_a_reserved_path_is_dropped_whole(hooks: Receivers) -> None:
    await hooks.add(lambda _r: Reply.json({"patch": {"id": "hijack", "firstName": "X"}}))
    await hooks.add(lambda _r: Reply.json({"patch": {"lastName": "Doe"}}))
    result, _ = await timed_call(hooks.runtime)
    assert [o.status for o in result.outcomes] == ["invalid", "ok"]
    assert "reserved path /id" in (result.outcomes[0].detail or "")
    assert result.patch == {"lastName": "Doe"} and result.partial
    assert result.apply() == {**CLAIMS, "lastName": "Doe"}


# -- failure policies, retries ------------------------------------------------------


async def test_failure_policy_ignore_marks_the_result_partial(hooks: Receivers) -> None:
    await hooks.add(lambda _r: Reply(status=500), on_failure="ignore")
    await hooks.add(lambda _r: Reply.json({"patch": {"a": 1}}))
    result, _ = await timed_call(hooks.runtime)
    assert result.allowed and result.partial and result.patch == {"a": 1}


async def test_failure_policy_deny_names_the_failed_registration(hooks: Receivers) -> None:
    _, reg = await hooks.add(lambda _r: Reply(body=b"not json"), on_failure="deny")
    result, _ = await timed_call(hooks.runtime)
    assert not result.allowed
    assert reg.id in (result.reason or "") and "invalid" in (result.reason or "")
    assert "response is not JSON" in (result.outcomes[0].detail or "")


@pytest.mark.parametrize(("status", "tries"), [(503, 2), (500, 2), (429, 2), (400, 1), (404, 1)])
async def test_one_retry_only_on_429_and_5xx(hooks: Receivers, status: int, tries: int) -> None:
    receiver, _ = await hooks.add(lambda _r: Reply(status=status))
    result, _ = await timed_call(hooks.runtime)
    assert len(receiver.received) == tries
    assert result.outcomes[0].status == "error" and result.outcomes[0].attempts == tries
    assert f"HTTP {status}" in (result.outcomes[0].detail or "")


async def test_a_retry_that_succeeds_is_ok(hooks: Receivers) -> None:
    answers = iter([Reply(status=503), Reply.json({"patch": {"a": 1}})])
    receiver, _ = await hooks.add(lambda _r: next(answers))
    result, _ = await timed_call(hooks.runtime)
    assert result.outcomes[0].status == "ok" and result.outcomes[0].attempts == 2
    assert result.patch == {"a": 1} and not result.partial
    assert len(receiver.received) == 2


async def test_no_retry_without_enough_time_left(hooks: Receivers) -> None:
    receiver, _ = await hooks.add(lambda _r: Reply(status=503, delay=0.2))
    result, elapsed = await timed_call(hooks.runtime, deadline=0.3)
    assert len(receiver.received) == 1 and result.outcomes[0].attempts == 1
    assert elapsed < 0.3 + SLACK


async def test_a_connection_error_is_retried_once(hooks: Receivers, refused_port: int) -> None:
    await hooks.runtime.registrations.create(
        org="acme",
        topics=["user_logged_in"],
        url=f"http://127.0.0.1:{refused_port}/hook",
        secret=SECRET,
    )
    result, _ = await timed_call(hooks.runtime)
    assert result.outcomes[0].attempts == 2


async def test_timeouts_are_not_retried(hooks: Receivers) -> None:
    receiver, _ = await hooks.add(lambda _r: Reply.hang(), timeout=0.1)
    await timed_call(hooks.runtime, deadline=1.0)
    assert len(receiver.received) == 1


async def test_redirects_are_not_followed(hooks: Receivers) -> None:
    async with LoopbackReceiver() as target:
        await hooks.add(lambda _r: Reply(status=302, headers={"Location": target.url}))
        result, _ = await timed_call(hooks.runtime)
    assert target.received == []
    assert "redirects are not followed" in (result.outcomes[0].detail or "")


# -- circuit breaker ----------------------------------------------------------------


async def test_breaker_opens_answers_at_once_then_probes_and_closes(tmp_path, master_key) -> None:
    policy = BreakerPolicy(window=30, min_calls=3, ratio=0.5, cooldown=0.3)
    healthy = False

    def handler(_r: Received) -> Reply:
        return Reply.json({"ok": True}) if healthy else Reply(status=400)

    async with (
        HookRuntime(
            f"sqlite:///{tmp_path / 'b.db'}",
            workers=0,
            master_key=master_key,
            breaker=policy,
            allow_private_targets=True,
        ) as runtime,
        LoopbackReceiver(handler) as receiver,
    ):
        await runtime.registrations.create(
            org="acme",
            topics=["user_logged_in"],
            url=receiver.url,
            secret=SECRET,
            on_failure="deny",
        )
        for _ in range(3):
            await runtime.call("user_logged_in", CLAIMS, org="acme")
        seen = len(receiver.received)
        result = await runtime.call("user_logged_in", CLAIMS, org="acme")
        assert result.outcomes[0].status == "circuit_open" and not result.allowed
        assert len(receiver.received) == seen  # not called
        await anyio.sleep(0.35)
        healthy = True
        probe = await runtime.call("user_logged_in", CLAIMS, org="acme")
        assert probe.outcomes[0].status == "ok" and len(receiver.received) == seen + 1
        again = await runtime.call("user_logged_in", CLAIMS, org="acme")
        assert again.outcomes[0].status == "ok" and again.allowed


async def test_a_failed_probe_opens_the_breaker_again(tmp_path, master_key) -> None:
    policy = BreakerPolicy(window=30, min_calls=2, ratio=0.5, cooldown=0.2)
    async with (
        HookRuntime(
            f"sqlite:///{tmp_path / 'b.db'}",
            workers=0,
            master_key=master_key,
            breaker=policy,
            allow_private_targets=True,
        ) as runtime,
        LoopbackReceiver(lambda _r: Reply.hang()) as receiver,
    ):
        await runtime.registrations.create(
            org="acme", topics=["user_logged_in"], url=receiver.url, secret=SECRET
        )
        for _ in range(2):
            await runtime.call("user_logged_in", CLAIMS, org="acme", deadline=0.05)
        assert (await runtime.call("user_logged_in", CLAIMS, org="acme")).outcomes[
            0
        ].status == "circuit_open"
        await anyio.sleep(0.25)
        probe = await runtime.call("user_logged_in", CLAIMS, org="acme", deadline=0.05)
        assert probe.outcomes[0].status == "timeout"
        assert (await runtime.call("user_logged_in", CLAIMS, org="acme")).outcomes[
            0
        ].status == "circuit_open"
        assert len(receiver.received) == 3


# -- signed responses, re-entrancy, signing ----------------------------------------


async def test_signed_responses_are_required_when_asked(hooks: Receivers) -> None:
    def call_id(request: Received) -> str | None:
        return verify("jws", request.headers, request.body, SECRET).event_id

    await hooks.add(
        lambda r: Reply.signed({"patch": {"a": 1}}, SECRET, call_id(r)), signed_responses=True
    )
    await hooks.add(lambda _r: Reply.json({"patch": {"b": 2}}), signed_responses=True)
    await hooks.add(
        lambda r: Reply.signed({"patch": {"c": 3}}, "some_other_secret", call_id(r)),
        signed_responses=True,
    )
    result, _ = await timed_call(hooks.runtime)
    assert [o.status for o in result.outcomes] == ["ok", "invalid", "invalid"]
    assert result.patch == {"a": 1}


async def test_requests_are_signed_by_the_registration_profile(hooks: Receivers) -> None:
    import jose.jws

    receiver, _ = await hooks.add(lambda _r: Reply(status=204))
    result, _ = await timed_call(hooks.runtime)
    request = receiver.received[0]
    payload = json.loads(jose.jws.verify(request.body.decode(), SECRET, algorithms=["HS256"]))
    assert payload == {**CLAIMS, "webhook_request_id": result.call_id}
    assert request.headers["x-hook-depth"] == "1"


async def test_a_call_while_serving_a_blocking_hook_is_refused(hooks: Receivers) -> None:
    with serving_hook({"X-Hook-Depth": "1"}), pytest.raises(ReentrancyError, match="chain"):
        await hooks.runtime.call("user_logged_in", CLAIMS, org="acme")
    with serving_hook({}):  # not serving a hook: allowed
        await hooks.runtime.call("user_logged_in", CLAIMS, org="acme")


# -- input and bookkeeping ----------------------------------------------------------


async def test_bad_input_is_refused_with_a_precise_message(sqlite_runtime: HookRuntime) -> None:
    with pytest.raises(ValidationError, match="queued topic: use emit"):
        await sqlite_runtime.call("profile_updated", {"id": "x"}, org="acme")
    with pytest.raises(ValidationError, match='data: "id" is a required property'):
        await sqlite_runtime.call("user_logged_in", {"email": "x"}, org="acme")
    with pytest.raises(ValidationError, match="deadline"):
        await sqlite_runtime.call("user_logged_in", CLAIMS, org="acme", deadline=0)
    with pytest.raises(ValidationError, match="unknown topic"):
        await sqlite_runtime.call("user_logged_on", CLAIMS, org="acme")


async def test_no_registrations_allows_at_once(sqlite_runtime: HookRuntime) -> None:
    result = await sqlite_runtime.call("user_logged_in", CLAIMS, org="acme")
    assert result.allowed and result.outcomes == () and result.apply() == CLAIMS


async def test_outcomes_are_recorded_in_the_attempt_log(hooks: Receivers) -> None:
    await hooks.add(lambda _r: Reply(status=500))
    await hooks.add(lambda _r: Reply.json({"decision": "deny", "reason": "r"}))
    result, _ = await timed_call(hooks.runtime)
    await hooks.runtime.attempts.flush()
    async with hooks.runtime.database.engine.connect() as conn:
        rows = (
            await conn.execute(
                text(f"SELECT outcome, status_code, call_id FROM {ATTEMPTS.fullname} ORDER BY id")
            )
        ).all()
    assert sorted((r[0], r[1]) for r in rows) == [("deny", 200), ("error", 500), ("error", 500)]
    assert {r[2] for r in rows} == {result.call_id}


async def test_a_thousand_calls_leak_no_tasks_and_no_sockets(hooks: Receivers) -> None:
    await hooks.add(lambda _r: Reply.json({"ok": True}))
    await hooks.add(lambda _r: Reply.hang(), priority=5)
    await hooks.add(lambda _r: Reply(status=503))
    for _ in range(20):  # warm the pools
        await hooks.runtime.call("user_logged_in", CLAIMS, org="acme", deadline=0.02)
    await hooks.runtime.attempts.flush()
    tasks_before = len(asyncio.all_tasks())
    fds_before = len(os.listdir("/proc/self/fd"))
    for _ in range(1000):
        await hooks.runtime.call("user_logged_in", CLAIMS, org="acme", deadline=0.02)
    await hooks.runtime.attempts.flush()
    await anyio.sleep(0.1)
    assert len(asyncio.all_tasks()) <= tasks_before
    assert len(os.listdir("/proc/self/fd")) <= fds_before + 10
