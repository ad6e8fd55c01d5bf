"""What unit and integration tests share: the async backend of their ``anyio`` tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"
