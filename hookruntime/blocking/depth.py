"""The re-entrancy guard: outgoing blocking calls carry ``X-Hook-Depth``; a service that
serves a blocking hook marks its handler with :func:`serving_hook`, and a blocking call
made inside it is refused instead of deadlocking the chain against its own deadline.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["HOOK_DEPTH_HEADER", "current_depth", "serving_hook"]

HOOK_DEPTH_HEADER = "X-Hook-Depth"
_depth: ContextVar[int] = ContextVar("hookruntime_hook_depth", default=0)


def current_depth() -> int:
    """How deep in a chain of blocking hooks the current task is (0: not in one)."""
    return _depth.get()


def _parse(headers: Mapping[str, str]) -> int:
    for name, value in headers.items():
        if name.lower() == HOOK_DEPTH_HEADER.lower():
            digits = value.strip()
            # ASCII only: str.isdigit() also says yes to "²", which int() refuses.
            return int(digits) if digits.isascii() and digits.isdigit() else 1
    return 0


@contextmanager
def serving_hook(headers: Mapping[str, str]) -> Iterator[int]:
    """Mark the current task as serving the request whose ``headers`` are given."""
    token = _depth.set(max(_depth.get(), _parse(headers)))
    try:
        yield _depth.get()
    finally:
        _depth.reset(token)
