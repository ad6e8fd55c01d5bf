"""The event loop every command runs on: uvloop where it is installed (a dependency
outside Windows), else asyncio's own: it is the faster of the two for the HTTP client
and the delivery path (the README's "Measured design choices").
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio

__all__ = ["backend_options", "run"]

T = TypeVar("T")


def backend_options() -> dict[str, Any]:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return {}
    return {"use_uvloop": True}


def run(func: Callable[..., Awaitable[T]], *args: Any) -> T:
    return anyio.run(func, *args, backend_options=backend_options())
