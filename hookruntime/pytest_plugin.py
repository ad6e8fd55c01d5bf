"""pytest fixtures for testing your hooks against a real hookruntime.

Opt in, in a ``conftest.py``::

    pytest_plugins = ["hookruntime.pytest_plugin"]

or on the command line, ``pytest -p hookruntime.pytest_plugin``. The plugin is not
registered through a ``pytest11`` entry point on purpose: that would add these fixtures
(and this module's imports) to the test session of every project that merely has
hookruntime installed, including those that never test hooks.

The fixtures are async and run under anyio's pytest plugin (installed with anyio), on
the asyncio backend: mark the tests ``@pytest.mark.anyio`` and define, in the same
``conftest.py``::

    @pytest.fixture
    def anyio_backend():
        return "asyncio"

=======================  ==============================================================
``hook_runtime``         an open :class:`~hookruntime.HookRuntime` on a SQLite file in
                         ``tmp_path``, loopback receivers allowed, one delivery worker,
                         a generated master key; ``hook_runtime_options`` adds arguments
``hook_receiver``        a started :class:`~hookruntime.testing.LoopbackReceiver`; set its
                         ``handler`` to script its answers
``hook_registration``    ``await hook_registration(topics, url=None, retry_schedule=…,
                         **kw)``: a registration of ``org="acme"`` (by default) to the
                         receiver, retrying after 10 ms instead of minutes
=======================  ==============================================================

:func:`~hookruntime.testing.drain`, :func:`~hookruntime.testing.assert_delivered` and
:func:`~hookruntime.testing.signed_request` are plain functions in
:mod:`hookruntime.testing`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest

from .registrations import Registration
from .runtime import HookRuntime
from .store.crypto import generate_master_key
from .testing import LoopbackReceiver

__all__ = [
    "FAST_RETRIES",
    "TEST_ORG",
    "hook_receiver",
    "hook_registration",
    "hook_runtime",
    "hook_runtime_options",
]

#: Three retries, 10 ms apart: a failing receiver is dead within a test's patience.
FAST_RETRIES = (0.01, 0.01, 0.01)
TEST_ORG = "acme"

Register = Callable[..., Awaitable[Registration]]


@pytest.fixture
def hook_runtime_options() -> dict[str, Any]:
    """Extra :class:`~hookruntime.HookRuntime` arguments for ``hook_runtime``; override
    this fixture to pass ``plugins=[…]``, ``http_client="httpx"``, a PostgreSQL
    ``database_url``…"""
    return {}


@pytest.fixture
async def hook_runtime(
    tmp_path: Path, hook_runtime_options: dict[str, Any]
) -> AsyncIterator[HookRuntime]:
    """An open runtime, closed when the test ends (whatever is still undelivered stays so:
    ``await drain(hook_runtime)`` first to wait for it)."""
    options: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'hooks.db'}",
        "workers": 1,
        "master_key": generate_master_key(),
        "allow_private_targets": True,
        # Only these arguments: a HOOKRUNTIME_* variable of the developer's shell (a
        # PostgreSQL URL, a static WEBHOOK_* registration) must not leak into tests.
        "environ": {},
        **hook_runtime_options,
    }
    async with HookRuntime(**options) as runtime:
        yield runtime


@pytest.fixture
async def hook_receiver() -> AsyncIterator[LoopbackReceiver]:
    """A receiver on 127.0.0.1 answering 200 until its ``handler`` says otherwise."""
    async with LoopbackReceiver() as receiver:
        yield receiver


@pytest.fixture
def hook_registration(hook_runtime: HookRuntime, hook_receiver: LoopbackReceiver) -> Register:
    """A factory of registrations with fast retries (retries are per registration)."""

    async def register(
        topics: str | Iterable[str],
        *,
        url: str | None = None,
        retry_schedule: Sequence[float] = FAST_RETRIES,
        org: str = TEST_ORG,
        **options: Any,
    ) -> Registration:
        return await hook_runtime.registrations.create(
            org=org,
            topics=topics,
            url=url or hook_receiver.url,
            retry_schedule=retry_schedule,
            **options,
        )

    return register
