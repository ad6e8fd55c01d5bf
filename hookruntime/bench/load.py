"""The loaded scenarios of ``hookruntime bench blocking``: many blocking calls at once
under one deadline, and single emits beside an in-process worker."""

from __future__ import annotations

import gc
import time
from pathlib import Path
from typing import Any

import anyio

from ..blocking import BreakerPolicy
from ..runtime import HookRuntime
from ..store.crypto import generate_master_key
from .stats import ReceiverProcess, summary

__all__ = ["emits_per_second", "load"]

CLAIMS = {"id": "profile_org_id", "email": "john@doe.com", "firstName": "John"}
#: Over the deadline by more than this, a call counts as late.
LATE = 0.020


async def load(
    receiver: ReceiverProcess,
    path: Path,
    *,
    concurrency: int = 200,
    deadline: float = 0.3,
    seconds: float = 3.0,
    warmup: float = 1.0,
    freeze: bool = False,
) -> dict[str, Any]:
    """``concurrency`` callers, each calling again as soon as its call returns, for
    ``warmup`` and then ``seconds``; every call fans out to a hanging, a 50 ms and a
    prompt receiver. Only calls started after the warm-up count: the first ones start
    together (cold caches, a new connection per request) and end together, and the
    figures are of the steady state. With ``freeze``, ``gc.freeze()`` after start-up, as
    the README suggests a host do."""
    # Kept closed so that every call waits out its deadline on the hanging receiver.
    never_open = BreakerPolicy(min_calls=10**9)
    async with HookRuntime(
        f"sqlite:///{path}",
        master_key=generate_master_key(),
        allow_private_targets=True,
        breaker=never_open,
    ) as runtime:
        for name in ("hang", "slow", "fast"):
            await runtime.registrations.create(
                org="bench",
                topics=["user_logged_in"],
                url=receiver.url(name),
                secret="signature_secret",
            )
        overshoot: list[float] = []
        measured = time.perf_counter() + warmup
        stop = measured + seconds

        async def caller() -> None:
            while time.perf_counter() < stop:
                started = time.perf_counter()
                await runtime.call("user_logged_in", CLAIMS, org="bench", deadline=deadline)
                if started >= measured:
                    overshoot.append(time.perf_counter() - started - deadline)

        if freeze:
            gc.collect()
            gc.freeze()
        try:
            async with anyio.create_task_group() as group:
                for _ in range(concurrency):
                    group.start_soon(caller)
                await anyio.sleep(warmup)
                started = time.perf_counter()
                cpu, loop_cpu = time.process_time(), time.thread_time()
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
            loop_cpu = time.thread_time() - loop_cpu
        finally:
            if freeze:
                gc.unfreeze()
    on_time = sum(o <= LATE for o in overshoot)
    return {
        "concurrency": concurrency,
        "deadline_ms": deadline * 1000,
        "freeze": freeze,
        "overshoot": summary(overshoot),
        "calls_per_second": round(len(overshoot) / elapsed, 1),
        "within_20ms": round(on_time / len(overshoot), 4),
        # The rate of calls that ended within deadline + 20 ms: what the process sustains.
        "on_time_per_second": round(on_time / elapsed, 1),
        "cpu_ms_per_call": round(cpu / len(overshoot) * 1000, 3),
        "loop_cpu_ms_per_call": round(loop_cpu / len(overshoot) * 1000, 3),
    }


async def emits_per_second(
    receiver: ReceiverProcess, path: Path, workers: int, n: int
) -> dict[str, Any]:
    """``n`` single emits, one after another, with ``workers`` in-process workers."""
    async with HookRuntime(
        f"sqlite:///{path}",
        workers=workers,
        master_key=generate_master_key(),
        allow_private_targets=True,
    ) as runtime:
        await runtime.registrations.create(
            org="bench",
            topics=["punch.create"],
            url=receiver.url("fast"),
            secret="signature_secret",
        )
        item = {"punch": {"id": 1, "punch_type": "IN", "person": {"id": 1, "first_name": "R"}}}
        started = time.perf_counter()
        for _ in range(n):
            await runtime.emit("punch.create", item, org="bench")
        elapsed = time.perf_counter() - started
        claims = sum(w.claims for w in runtime.workers)
        empty = sum(w.empty_claims for w in runtime.workers)
    return {
        "n": n,
        "per_second": round(n / elapsed, 1),
        "claims": claims,
        "empty_claims": empty,
    }
