"""hookruntime.sync: the runtime for synchronous hosts, used from many threads at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from anyio.from_thread import start_blocking_portal

from hookruntime import HookRuntimeError, NotFoundError, ValidationError
from hookruntime.sync import SyncHookRuntime
from hookruntime.testing import LoopbackReceiver, Received, Reply


@pytest.fixture
def receiver() -> Iterator[LoopbackReceiver]:
    """A loopback receiver on a loop of its own, so that the test itself stays sync."""

    def answer(request: Received) -> Reply:
        if request.path.startswith("/deny"):
            return Reply.json({"decision": "deny", "reason": "no"})
        return Reply(204)

    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(LoopbackReceiver(answer)) as rx,
    ):
        yield rx


def _wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("timed out")


def test_thirty_two_threads_call_emit_and_read_through_one_instance(
    tmp_path: Path, master_key: str, receiver: LoopbackReceiver
) -> None:
    url = f"sqlite:///{tmp_path / 'hooks.db'}"
    with SyncHookRuntime(url, master_key=master_key, allow_private_targets=True) as hooks:
        hooks.registrations.create(
            org="acme", topics=["profile_updated", "user_logged_in"], url=receiver.url
        )
        loop_threads: set[int] = set()

        def request(n: int) -> tuple[str, bool, int]:
            event_id = hooks.emit("profile_updated", {"id": f"u{n}"}, org="acme", key=f"u{n}")
            result = hooks.call("user_logged_in", {"id": f"u{n}"}, org="acme", deadline=2)
            listed = hooks.registrations.list(org="acme")
            loop_threads.add(threading.get_ident())
            return event_id, result.allowed, len(listed)

        with ThreadPoolExecutor(32) as pool:
            answers = list(pool.map(request, range(64)))

        assert len(loop_threads) > 1  # the calls really came from many threads
        assert all(allowed and count == 1 for _, allowed, count in answers)
        emitted = {event_id for event_id, _, _ in answers}
        assert len(emitted) == 64

        def delivered() -> bool:
            return len(hooks.deliveries.list(org="acme", status="delivered", limit=200)) == 64

        _wait_for(delivered)
        posts = [r for r in receiver.received if r.method == "POST"]
        assert len(posts) >= 64 + 64  # every emit delivered and every call made


def test_emit_many_and_errors_are_the_runtimes_own(
    tmp_path: Path, master_key: str, receiver: LoopbackReceiver
) -> None:
    url = f"sqlite:///{tmp_path / 'hooks.db'}"
    with SyncHookRuntime(url, master_key=master_key, allow_private_targets=True) as hooks:
        reg = hooks.registrations.create(org="acme", topics=["profile_updated"], url=receiver.url)
        ids = hooks.emit_many("profile_updated", [{"id": "a"}, {"id": "b"}], org="acme")
        assert len(ids) == 2
        with pytest.raises(ValidationError):
            hooks.emit("no_such_topic", {}, org="acme")
        with pytest.raises(NotFoundError):
            hooks.registrations.get("reg_missing", org="acme")
        assert hooks.registrations.get(reg.id, org="acme").url == receiver.url


def test_a_closed_instance_says_so(tmp_path: Path, master_key: str) -> None:
    hooks = SyncHookRuntime(f"sqlite:///{tmp_path / 'hooks.db'}", master_key=master_key)
    with pytest.raises(HookRuntimeError, match="not open"):
        hooks.emit("profile_updated", {}, org="acme")
    with hooks:
        assert hooks.registrations.list(org="acme") == []
    with pytest.raises(HookRuntimeError, match="not open"):
        hooks.call("user_logged_in", {"id": "u"}, org="acme")
