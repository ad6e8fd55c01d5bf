"""``hookruntime bench clients``: the raw ceiling of each HTTP client backend, side by side.

Each backend posts the same signed bodies, 64 at a time, no database, to one loopback
receiver in its own process; the backends take turns, in a different order each repeat,
so that neither gains from a machine that drifts. For each run: requests per second,
the event loop's CPU per request (the CPU time of the thread running the loop: all of
aiohttp's work, and only the Python side of pyreqwest's, whose HTTP runs in threads of
its own), and the whole process's CPU per request. ``--work-us`` adds that much of the
host's own Python (a busy loop on the event loop) to every request, as a host would.
"""

from __future__ import annotations

import importlib.util
import os
import time
from typing import Any

import anyio

from .. import eventloop
from ..http import HttpClient
from ..http.httpx_client import HttpxClient
from .stats import ReceiverProcess

__all__ = ["client", "measured_backends", "render", "run"]

CONCURRENCY = 64


def measured_backends() -> list[str]:
    """The backends measured: aiohttp, and pyreqwest where it is installed."""
    return ["aiohttp", *(["reqwest"] if importlib.util.find_spec("pyreqwest") else [])]


def client(backend: str) -> HttpClient:
    """An unguarded client of ``backend``: the receivers measured are on loopback."""
    if backend == "reqwest":
        from ..http.reqwest_client import ReqwestClient

        return ReqwestClient(allow_private=True)
    if backend == "httpx":
        return HttpxClient(allow_private=True)
    return HttpClient(allow_private=True)


async def _once(backend: str, url: str, n: int, work_us: float) -> dict[str, Any]:
    from ..profiles import PROFILES, Message

    profile = PROFILES["servicehook"]
    requests = [
        profile.render(Message("punch.create", f"evt_{i}", {"punch": {"id": i}}, ["s" * 16]))
        for i in range(n)
    ]
    sender = client(backend)
    await sender.open()
    work = work_us / 1e6
    queue = iter(requests)

    async def lane() -> None:
        for request in queue:
            if work:
                until = time.perf_counter() + work
                while time.perf_counter() < until:
                    pass
            response = await sender.post(url, request.headers, request.body, timeout=30)
            if response.status != 200:
                raise RuntimeError(f"{backend}: the receiver answered {response.status}")

    try:
        started, loop_cpu, cpu = time.perf_counter(), time.thread_time(), time.process_time()
        async with anyio.create_task_group() as group:
            for _ in range(CONCURRENCY):
                group.start_soon(lane)
        elapsed = time.perf_counter() - started
        loop_cpu, cpu = time.thread_time() - loop_cpu, time.process_time() - cpu
    finally:
        await sender.aclose()
    return {
        "per_second": round(n / elapsed, 1),
        "loop_cpu_us_per_request": round(loop_cpu / n * 1e6, 1),
        "process_cpu_us_per_request": round(cpu / n * 1e6, 1),
    }


async def _measure(n: int, repeats: int, work_us: float, backends: list[str]) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {backend: [] for backend in backends}
    with ReceiverProcess() as receiver:
        url = receiver.url("hook")
        for backend in backends:  # warm up the receiver and each client's imports
            await _once(backend, url, min(n, 2000), 0)
        for repeat in range(repeats):
            order = backends if repeat % 2 == 0 else backends[::-1]
            for backend in order:
                runs[backend].append(await _once(backend, url, n, work_us))
    results: dict[str, Any] = {
        "n": n,
        "concurrency": CONCURRENCY,
        "work_us": work_us,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "runs": runs,
    }
    for backend, measured in runs.items():
        results[backend] = {
            key: round(sum(run[key] for run in measured) / len(measured), 1) for key in measured[0]
        }
    return results


def run(
    n: int = 10_000, repeats: int = 3, work_us: float = 0.0, backends: list[str] | None = None
) -> dict[str, Any]:
    return eventloop.run(_measure, n, repeats, work_us, backends or measured_backends())


def render(results: dict[str, Any]) -> str:
    lines = [
        f"raw client ceiling, {results['n']} POSTs at {results['concurrency']} in flight to a "
        f"loopback receiver (own process), {results['work_us']:.0f} us of host work each; "
        f"load average {results['load_average']}:"
    ]
    for backend, measured in results["runs"].items():
        mean = results[backend]
        rates = ", ".join(f"{run['per_second']:.0f}" for run in measured)
        lines.append(
            f"  {backend:<8} {mean['per_second']:>8.1f} req/s ({rates})  "
            f"loop CPU {mean['loop_cpu_us_per_request']:>6.1f} us/request  "
            f"process CPU {mean['process_cpu_us_per_request']:>6.1f} us/request"
        )
    if "aiohttp" in results and "reqwest" in results:
        ratio = results["reqwest"]["per_second"] / results["aiohttp"]["per_second"]
        lines.append(f"  reqwest / aiohttp requests per second: {ratio:.2f}")
    return "\n".join(lines)
