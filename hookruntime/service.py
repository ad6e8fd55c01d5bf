"""The long-running verbs, ``serve`` and ``worker``, and the process they run in: whether
a sender process beside the worker, and its start-up heap frozen. The parser that
reaches them is in :mod:`hookruntime.cli`; the other verbs are in
:mod:`hookruntime.commands`."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import socket
from collections.abc import Mapping
from pathlib import Path

import anyio

from .config import Settings
from .errors import HookRuntimeError
from .observe import exporting
from .runtime import HookRuntime

__all__ = ["cmd_serve", "cmd_worker", "service_sender_process"]

log = logging.getLogger("hookruntime.cli")


def _listen(host: str, port: int) -> socket.socket:
    """The server's socket, bound before anything else starts, so that a port in use is
    one clear error."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=2048)  # as uvicorn
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise HookRuntimeError(f"cannot listen on {host}:{port}: {reason}") from exc


def freeze_start_up_heap() -> None:
    """Move every object alive after start-up (modules, the app, the catalog) out of the
    garbage collector's sight: each full collection walked them all with the event loop
    stopped, and set the tail of blocking calls under load (the README's "Performance").
    A process of our own may; an embedded runtime leaves it to its host, since it is
    process-wide."""
    gc.collect()
    gc.freeze()
    count = gc.get_freeze_count()
    log.info("start-up heap frozen: %d objects", count, extra={"frozen_objects": count})


def service_sender_process(
    flag: bool | None, environ: Mapping[str, str] | None = None
) -> bool | None:
    """The standalone service's layout, the faster measured (README, Performance): the
    HTTP client (pyreqwest where installed) sending from a child process when a core is
    spare. A flag or HOOKRUNTIME_SENDER_PROCESS that says otherwise wins, and httpx (for
    pytest-httpx's mocks) stays in one process; an embedded HookRuntime stays one process
    unless asked."""
    env = os.environ if environ is None else environ
    if flag is not None or "HOOKRUNTIME_SENDER_PROCESS" in env:
        return flag
    if env.get("HOOKRUNTIME_HTTP_CLIENT") == "httpx":
        return None  # for pytest-httpx's mocks, which see this process only
    return usable_cpus() >= 2


#: cgroup v2's CPU limit of this process's group: "<quota> <period>", or "max <period>".
CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def usable_cpus() -> float:
    """The CPUs this process may use: those it may run on, or fewer where its container
    is held to a CPU quota (a pod limited to one CPU sees all of the host's)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    usable = float(cores or 1)
    try:
        quota, period = CPU_MAX.read_text().split()
        if quota != "max":
            usable = min(usable, int(quota) / int(period))
    except (OSError, ValueError):
        pass  # no cgroup v2 limit to read: the CPUs themselves
    return usable


async def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .api import create_app

    runtime = HookRuntime(
        args.database_url,
        allow_private_targets=args.allow_private_targets,
        sender_process=service_sender_process(args.sender_process),
    )
    if runtime.settings.allow_private_targets:
        log.warning(
            "HOOKRUNTIME_ALLOW_PRIVATE_TARGETS is on: receivers on loopback and "
            "private networks are allowed. Never run like this in production."
        )
    port = runtime.settings.port if args.port is None else args.port
    with _listen(args.host, port) as listening:
        # Opened here rather than in the app's lifespan: a database that cannot be
        # reached is then our one-line error, not a logged traceback.
        async with runtime:
            bound = listening.getsockname()[1]
            log.info(
                "listening on http://%s:%d",
                args.host,
                bound,
                extra={"host": args.host, "port": bound},
            )
            # log_config=None: the server's lines go through the tree the CLI configured.
            config = uvicorn.Config(
                create_app(runtime, manage_lifecycle=False),
                host=args.host,
                port=port,
                log_config=None,
                lifespan="on",
            )
            freeze_start_up_heap()
            await uvicorn.Server(config).serve(sockets=[listening])
    return 0


async def cmd_worker(args: argparse.Namespace) -> int:
    import signal

    runtime = HookRuntime(
        args.database_url,
        workers=max(Settings.from_env().workers if args.workers is None else args.workers, 1),
        concurrency=args.concurrency,
        sender_process=service_sender_process(args.sender_process),
        lease=args.lease,
        allow_private_targets=args.allow_private_targets,
    )
    port = args.metrics_port if runtime.metrics is not None else 0
    host = runtime.settings.host
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with runtime, exporting(runtime.metrics, port, host):
            freeze_start_up_heap()
            senders = [w.sender_pid for w in runtime.workers if w.sender_pid is not None]
            beside = f" (sender processes: {', '.join(map(str, senders))})" if senders else ""
            metrics = f"; metrics on http://{host}:{port}/metrics" if port else ""
            log.info(
                "worker %s delivering on %s%s%s",
                runtime.workers[0].id,
                runtime.database.dialect,
                beside,
                metrics,
                extra={"worker": runtime.workers[0].id, "metrics_port": port or None},
            )
            async for _signal in signals:
                log.info("stopping: finishing in-flight deliveries")
                break
    return 0
