"""``GET /metrics`` on a port of its own, for ``hookruntime worker --metrics-port``: a
worker process has no API server, and Prometheus scrapes each process.

Just enough HTTP/1.1 for a scraper (one request per connection), on the worker's own
event loop, so the scrape reads the same registry as the deliveries update.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from anyio.abc import SocketAttribute, SocketStream, TaskStatus

from .metrics import CONTENT_TYPE, Metrics

__all__ = ["exporting", "serve_metrics"]

_HEAD_LIMIT = 8192


async def serve_metrics(
    metrics: Metrics,
    port: int,
    host: str = "127.0.0.1",
    *,
    task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled; ``task_status`` gets the port (useful with ``port=0``)."""
    listener = await anyio.create_tcp_listener(local_host=host, local_port=port, reuse_port=False)

    async def handle(stream: SocketStream) -> None:
        async with stream:
            try:
                with anyio.fail_after(10):
                    await _answer(stream, metrics)
            except (TimeoutError, anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                return

    async with listener:
        task_status.started(listener.extra(SocketAttribute.local_port))
        await listener.serve(handle)


async def _answer(stream: SocketStream, metrics: Metrics) -> None:
    head = b""
    while b"\r\n\r\n" not in head:
        if len(head) > _HEAD_LIMIT:
            return
        head += await stream.receive(4096)
    parts = head.split(b"\r\n", 1)[0].split()
    method = parts[0] if parts else b""
    path = parts[1].split(b"?", 1)[0] if len(parts) > 1 else b""
    if method not in (b"GET", b"HEAD") or path != b"/metrics":
        status, body, kind = "404 Not Found", b"not found: try GET /metrics\n", "text/plain"
    else:
        status, body, kind = "200 OK", await metrics.render(), CONTENT_TYPE
    response = (
        f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    await stream.send(response + (b"" if method == b"HEAD" else body))


@asynccontextmanager
async def exporting(metrics: Metrics | None, port: int | None, host: str) -> AsyncIterator[None]:
    """Serve ``metrics`` on ``port`` while the block runs (nothing when either is None/0)."""
    if metrics is None or not port:
        yield
        return
    async with anyio.create_task_group() as group:
        await group.start(serve_metrics, metrics, port, host)
        yield
        group.cancel_scope.cancel()
