"""The pytest kit, used as a host's test suite uses it: each test here runs a user's test
file with ``-p hookruntime.pytest_plugin`` under pytester."""

from __future__ import annotations

import re
import textwrap
import time
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = """
import pytest

@pytest.fixture
def anyio_backend():
    return "asyncio"
"""


def run(pytester: pytest.Pytester, source: str, *args: str) -> pytest.RunResult:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_user=textwrap.dedent(source))
    return pytester.runpytest("-p", "hookruntime.pytest_plugin", "-W", "error", *args)


def test_an_emitted_event_is_drained_to_the_receiver_and_asserted(
    pytester: pytest.Pytester,
) -> None:
    result = run(
        pytester,
        """
        import pytest
        from hookruntime.testing import assert_delivered, drain

        pytestmark = pytest.mark.anyio

        async def test_profile_updated_is_delivered(
            hook_runtime, hook_registration, hook_receiver
        ):
            registration = await hook_registration("profile_updated")
            await hook_runtime.emit("profile_updated", {"id": "u1"}, org="acme")
            await hook_runtime.emit("profile_updated", {"id": "u2"}, org="acme")
            await drain(hook_runtime)
            secret = registration.secret
            [one] = await assert_delivered(hook_receiver, data={"id": "u1"}, secret=secret)
            assert one.event_id.startswith("evt")
            await assert_delivered(hook_runtime, topic="profile_updated", count=2, org="acme")
            with pytest.raises(AssertionError, match="expected 1 deliveries matching"):
                await assert_delivered(hook_runtime, topic="profile_updated", count=1)
        """,
    )
    result.assert_outcomes(passed=1)


def test_a_failing_receiver_runs_through_its_fast_retries_within_a_drain(
    pytester: pytest.Pytester,
) -> None:
    result = run(
        pytester,
        """
        import time
        import pytest
        from hookruntime.testing import Reply, drain

        pytestmark = pytest.mark.anyio

        async def test_dead_after_four_attempts(hook_runtime, hook_registration, hook_receiver):
            hook_receiver.handler = lambda request: Reply(500)
            await hook_registration(["punch.create"])
            sample = hook_runtime.catalog.get_topic("punch.create").sample
            started = time.monotonic()
            await hook_runtime.emit("punch.create", sample, org="acme")
            await drain(hook_runtime, timeout=5)
            assert time.monotonic() - started < 3
            assert len(hook_receiver.received) == 4
            [dead] = await hook_runtime.deliveries.list(org="acme", status="dead")
            assert dead.attempts == 4
        """,
    )
    result.assert_outcomes(passed=1)


def test_drain_names_the_open_deliveries_when_it_times_out(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        import pytest
        from hookruntime.testing import DrainTimeout, Reply, drain

        pytestmark = pytest.mark.anyio

        async def test_slow_receiver(hook_runtime, hook_registration, hook_receiver):
            hook_receiver.handler = lambda request: Reply(delay=0.5)
            await hook_registration("profile_updated", timeout=2)
            await hook_runtime.emit("profile_updated", {"id": "u1"}, org="acme")
            expected = r"1 deliveries still open after 0.1 s: .*profile_updated"
            with pytest.raises(DrainTimeout, match=expected):
                await drain(hook_runtime, timeout=0.1)
            await drain(hook_runtime)
        """,
    )
    result.assert_outcomes(passed=1)


def test_a_blocking_call_is_answered_by_the_scripted_receiver(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        import pytest
        from hookruntime.testing import Reply

        pytestmark = pytest.mark.anyio

        async def test_deny(hook_runtime, hook_registration, hook_receiver):
            answer = Reply.json({"decision": "deny", "reason": "banned"})
            hook_receiver.handler = lambda request: answer
            await hook_registration("user_logged_in")
            result = await hook_runtime.call("user_logged_in", {"id": "u1"}, org="acme")
            assert not result.allowed and result.reason == "banned"
        """,
    )
    result.assert_outcomes(passed=1)


def test_signed_requests_of_every_profile_verify_as_hookruntime_would_send_them(
    pytester: pytest.Pytester,
) -> None:
    result = run(
        pytester,
        """
        import base64
        import pytest
        from hookruntime.errors import ValidationError, VerificationError
        from hookruntime.receiver import verify
        from hookruntime.testing import signed_request

        SECRETS = {
            "standard": "whsec_" + base64.b64encode(b"k" * 24).decode(),
            "jws": "signature_secret",
            "servicehook": "servicehook-secret-1234",
            "envelope": "envelope-secret-with-at-least-32-chars",
        }

        @pytest.mark.parametrize("profile", sorted(SECRETS))
        def test_round_trip(profile):
            secret = SECRETS[profile]
            headers, body = signed_request(
                profile, {"id": "u1"}, secret, topic="t", event_id="evt_1"
            )
            message = verify(profile, headers, body, secret)
            assert message.event_id == "evt_1"
            with pytest.raises(VerificationError):
                verify(profile, headers, body, secret + "x")

        def test_a_secret_the_profile_cannot_sign_with_is_refused():
            with pytest.raises(ValidationError, match="at least 32"):
                signed_request("envelope", {}, "short", topic="t")
        """,
    )
    result.assert_outcomes(passed=5)


def test_httpx_mock_intercepts_the_kits_runtime_on_the_httpx_client(
    pytester: pytest.Pytester,
) -> None:
    result = run(
        pytester,
        """
        import pytest
        from hookruntime.testing import assert_delivered, drain

        pytestmark = pytest.mark.anyio

        @pytest.fixture
        def hook_runtime_options():
            return {"http_client": "httpx"}

        async def test_mocked(hook_runtime, hook_registration, httpx_mock):
            httpx_mock.add_response(url="https://crm.example/hooks")
            await hook_registration("profile_updated", url="https://crm.example/hooks")
            await hook_runtime.emit("profile_updated", {"id": "u1"}, org="acme")
            await drain(hook_runtime)
            await assert_delivered(hook_runtime, data={"id": "u1"})
            assert len(httpx_mock.get_requests()) == 1
        """,
    )
    result.assert_outcomes(passed=1)


def test_the_fixtures_exist_only_where_the_plugin_is_enabled(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user="def test_uses(hook_runtime):\n    pass\n")
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'hook_runtime' not found*"])
    pytester.makeconftest(CONFTEST + 'pytest_plugins = ["hookruntime.pytest_plugin"]\n')
    pytester.makepyfile(
        test_user="""
        import pytest

        @pytest.mark.anyio
        async def test_uses(hook_runtime):
            assert hook_runtime.workers
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


@pytest.mark.anyio
async def test_a_runtime_closed_right_after_a_blocking_call_closes_at_once_and_logs_it(
    tmp_path, master_key
) -> None:
    # The kit's fixture closes the runtime as soon as a test ends: a blocking call's
    # attempt row, still lingering in the log's buffer, must be written, not waited on.
    from sqlalchemy import func, select

    from hookruntime import HookRuntime
    from hookruntime.store.models import ATTEMPTS
    from hookruntime.testing import LoopbackReceiver

    url = f"sqlite:///{tmp_path / 'h.db'}"
    async with LoopbackReceiver() as receiver:
        runtime = HookRuntime(url, master_key=master_key, allow_private_targets=True, workers=1)
        await runtime.open()
        await runtime.registrations.create(org="acme", topics=["user_logged_in"], url=receiver.url)
        await runtime.call("user_logged_in", {"id": "u1"}, org="acme")
        started = time.monotonic()
        await runtime.close()
        assert time.monotonic() - started < 2
    async with HookRuntime(url, master_key=master_key, workers=0) as reopened:
        conn = await reopened.database.engine.connect()
        try:
            count = await conn.scalar(select(func.count()).select_from(ATTEMPTS))
        finally:
            await conn.close()
    assert count == 1


def test_the_readme_examples_of_testing_your_hooks_pass(pytester: pytest.Pytester) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("## Testing your hooks", 1)[1].split("\n## ", 1)[0]
    conftest, tests = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    pytester.makeconftest(conftest)
    pytester.makepyfile(test_hooks=tests)
    pytester.runpytest("-W", "error").assert_outcomes(passed=3)


def test_hook_runtime_options_bring_a_hosts_own_plugin_and_database(
    pytester: pytest.Pytester, pg_url: str, anyio_backend: str
) -> None:
    result = run(
        pytester,
        f"""
        import pytest
        from hookruntime import SimplePlugin, Topic
        from hookruntime.testing import assert_delivered, drain

        pytestmark = pytest.mark.anyio

        @pytest.fixture
        def hook_runtime_options():
            merged = Topic(name="crm.contact_merged", mode="queued", schema={{"type": "object"}},
                           sample={{"id": "c1"}})
            return {{"plugins": [SimplePlugin("crm", [merged])], "database_url": "{pg_url}"}}

        async def test_own_topic(hook_runtime, hook_registration, hook_receiver):
            assert hook_runtime.database.dialect == "postgresql"
            await hook_registration("crm.contact_merged")
            await hook_runtime.emit("crm.contact_merged", {{"id": "c1"}}, org="acme")
            await drain(hook_runtime)
            await assert_delivered(hook_receiver, topic="crm.contact_merged", count=1)
        """,
    )
    result.assert_outcomes(passed=1)
