"""What unit and integration tests share: the async backend of their ``anyio`` tests, a
scripted DNS resolver and a port that refuses connections."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


class _ScriptedDns(AbstractResolver):
    """A resolver that answers from a script, one answer per look-up."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        address = self.answers.pop(0)
        return [
            ResolveResult(hostname=host, host=address, port=port, family=family, proto=0, flags=0)
        ]

    async def close(self) -> None:
        pass


@pytest.fixture
def scripted_dns() -> Callable[..., AbstractResolver]:
    """``scripted_dns("93.184.216.34", "127.0.0.1")``: a name answering each in turn."""
    return _ScriptedDns


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound, never listening, and held for the
    whole test, so that no other test (pytest-xdist runs three at once) can take it."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield int(held.getsockname()[1])
