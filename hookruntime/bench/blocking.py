"""``hookruntime bench blocking``: what a blocking call costs over a raw POST, measured
side by side in one run against a loopback receiver in its own process.

(a) a raw POST with the runtime's own HTTP client backend; (b) ``runtime.call`` with one
registration; (c) with ten; (d) deadline precision: calls with a 200 ms deadline where one
receiver hangs, reporting how far past the deadline each call returned; (e) the floor under (c):
ten concurrent raw POSTs with the same client, no runtime; (f) under load: 50, 100 and
200 calls at a time after a 1 s warm-up, with ``gc.freeze()`` after start-up (and 200
once more without it), each to three receivers (one hangs, one answers in 50 ms, one at
once) with a 300 ms deadline, for a few seconds: overshoot, calls per second and this
process's CPU per call (which, unlike the rest, hardly moves with the machine's load)
and the event loop's share of it; (g) single emits per second with the default
in-process worker and with none. The run ends with the figures the blocking path is
held to, each beside the load average it was measured under.

Every runtime but (g)'s second runs with the default ``workers=1``, in the same loop as
the calls, as an application embedding it would.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

from .. import eventloop
from ..blocking import BreakerPolicy
from ..config import Settings
from ..http import HttpClient
from ..runtime import HookRuntime
from ..store.crypto import generate_master_key
from .clients import client as backend_client
from .load import emits_per_second, load
from .stats import ReceiverProcess, summary

__all__ = ["run"]

CLAIMS = {"id": "profile_org_id", "email": "john@doe.com", "firstName": "John"}


def _ends(results: dict[str, Any]) -> list[str]:
    """The figures the blocking path is held to, one line each."""
    raw, one = results["a_raw_post"], results["b_call_1_registration"]
    seq = results["d_deadline_overshoot"]
    frozen = [f for f in results["f_load"] if f["freeze"]]
    top = frozen[-1]
    best = max(frozen, key=lambda f: f["on_time_per_second"])
    o = top["overshoot"]
    return [
        f"  one receiver: +{one['p50_ms'] - raw['p50_ms']:.3f} ms p50 over a raw POST "
        f"({results['http_client']}, {raw['p50_ms']:.3f} -> {one['p50_ms']:.3f} ms)",
        f"  sequential deadline overshoot: p50 {seq['p50_ms']:.2f} ms, p99 {seq['p99_ms']:.2f} ms"
        f" (load average {results['d_load_average']:.2f})",
        f"  {top['concurrency']} calls at once x 3 receivers, {top['deadline_ms']:.0f} ms "
        f"deadline, gc.freeze() after start-up: overshoot p50 {o['p50_ms']:.1f} ms, "
        f"p99 {o['p99_ms']:.1f} ms; "
        f"{top['cpu_ms_per_call'] * 1000:.0f} us CPU per call "
        f"({top['loop_cpu_ms_per_call'] * 1000:.0f} us on the event loop)"
        f" (load average {top['load_average']:.2f})",
        f"  calls/s one process sustains within deadline + 20 ms: "
        f"{best['on_time_per_second']:.0f} ({best['concurrency']} at once)",
    ]


async def _sequential(n: int, action: Any) -> list[float]:
    timings = []
    for _ in range(n):
        started = time.perf_counter()
        await action()
        timings.append(time.perf_counter() - started)
    return timings


async def _post(client: HttpClient, url: str, headers: dict[str, str], body: bytes) -> None:
    await client.post(url, headers, body, timeout=5)


async def _measure(receiver: ReceiverProcess, n: int, folder: Path) -> dict[str, Any]:
    backend = Settings.from_env().checked().http_client
    client = backend_client(backend)  # the runtime's backend, unguarded: loopback receiver
    await client.open()
    url = receiver.url("raw")
    headers = {"content-type": "application/json"}
    body = b'{"id":"profile_org_id","email":"john@doe.com","firstName":"John"}'
    await _sequential(200, lambda: client.post(url, headers, body, timeout=5))
    raw = await _sequential(n, lambda: client.post(url, headers, body, timeout=5))

    async def fan_out() -> None:
        async with anyio.create_task_group() as group:
            for index in range(10):
                group.start_soon(_post, client, receiver.url(f"r{index}"), headers, body)

    await _sequential(100, fan_out)
    raw_fan_out = await _sequential(n // 2, fan_out)
    await client.aclose()

    results: dict[str, Any] = {
        "http_client": backend,
        "a_raw_post": summary(raw),
        "e_raw_fan_out_10": summary(raw_fan_out),
    }
    for label, count in (("b_call_1_registration", 1), ("c_call_10_registrations", 10)):
        async with HookRuntime(
            f"sqlite:///{folder / f'{count}.db'}",
            master_key=generate_master_key(),
            allow_private_targets=True,
        ) as runtime:
            for index in range(count):
                await runtime.registrations.create(
                    org="bench",
                    topics=["user_logged_in"],
                    url=receiver.url(f"r{index}"),
                    secret="signature_secret",
                    profile="jws",
                )

            async def call(rt: HookRuntime = runtime) -> None:
                await rt.call("user_logged_in", CLAIMS, org="bench")

            await _sequential(200, call)
            results[label] = summary(await _sequential(n if count == 1 else n // 2, call))

    # The breaker would soon answer for the hanging receiver at once; keep it closed so
    # that every call waits out its deadline.
    never_open = BreakerPolicy(min_calls=10**9)
    async with HookRuntime(
        f"sqlite:///{folder / 'deadline.db'}",
        master_key=generate_master_key(),
        allow_private_targets=True,
        breaker=never_open,
    ) as runtime:
        for path in ("ok", "hang"):
            await runtime.registrations.create(
                org="bench",
                topics=["user_logged_in"],
                url=receiver.url(path),
                secret="signature_secret",
            )
        overshoot = []
        load_before = os.getloadavg()[0]
        for _ in range(200):
            started = time.perf_counter()
            await runtime.call("user_logged_in", CLAIMS, org="bench", deadline=0.2)
            overshoot.append(time.perf_counter() - started - 0.2)
        results["d_deadline_overshoot"] = summary(overshoot)
        results["d_load_average"] = round((load_before + os.getloadavg()[0]) / 2, 2)

    # 200 at a time is the goal; fewer shows the rate one process sustains within its
    # deadlines on this machine. gc.freeze() after start-up, as `hookruntime serve` does
    # and the README suggests a host do; the last row without it, for the difference.
    results["f_load"] = []
    for c, freeze in ((50, True), (100, True), (200, True), (200, False)):
        found = await load(receiver, folder / f"load{c}{freeze}.db", concurrency=c, freeze=freeze)
        found["load_average"] = round(os.getloadavg()[0], 2)
        results["f_load"].append(found)
    results["g_emits"] = {
        f"workers_{w}": await emits_per_second(receiver, folder / f"emit{w}.db", w, n)
        for w in (1, 0)
    }

    results["load_average"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    raw_p50 = results["a_raw_post"]["p50_ms"]
    results["ratios"] = {
        "b_over_a_p50": round(results["b_call_1_registration"]["p50_ms"] / raw_p50, 3),
        "c_over_a_p50": round(results["c_call_10_registrations"]["p50_ms"] / raw_p50, 3),
        "b_minus_a_p50_ms": round(results["b_call_1_registration"]["p50_ms"] - raw_p50, 3),
        "c_over_e_p50": round(
            results["c_call_10_registrations"]["p50_ms"] / results["e_raw_fan_out_10"]["p50_ms"], 3
        ),
    }
    return results


def run(n: int = 2000) -> dict[str, Any]:
    with ReceiverProcess() as receiver, tempfile.TemporaryDirectory() as folder:
        return eventloop.run(_measure, receiver, n, Path(folder))


def render(results: dict[str, Any]) -> str:
    lines = [
        f"load average {results['load_average']}; blocking calls against a loopback "
        f"receiver (own process), {results['http_client']}, sequential:"
    ]
    for key in (
        "a_raw_post",
        "b_call_1_registration",
        "c_call_10_registrations",
        "e_raw_fan_out_10",
        "d_deadline_overshoot",
    ):
        r = results[key]
        lines.append(
            f"  {key:<26} p50 {r['p50_ms']:>8.3f} ms  p99 {r['p99_ms']:>8.3f} ms  "
            f"max {r['max_ms']:>8.3f} ms  (n={r['n']})"
        )
    for f in results["f_load"]:
        o = f["overshoot"]
        lines.append(
            f"  f_load {f['concurrency']:>3} at once x 3{'' if f['freeze'] else ' (no gc.freeze)'}"
            f"  overshoot p50 {o['p50_ms']:.1f} ms  "
            f"p99 {o['p99_ms']:.1f} ms  max {o['max_ms']:.1f} ms  "
            f"{f['calls_per_second']:.0f} calls/s ({f['within_20ms']:.1%} within deadline + "
            f"20 ms), {f['cpu_ms_per_call']:.2f} ms CPU/call "
            f"({f['loop_cpu_ms_per_call']:.2f} on the loop), load average {f['load_average']:.2f}"
        )
    for key, g in results["g_emits"].items():
        lines.append(
            f"  g_single_emits {key:<12} {g['per_second']:.0f} emits/s "
            f"({g['claims']} claims, {g['empty_claims']} found nothing)"
        )
    ratios = results["ratios"]
    lines.append(
        f"  (b)/(a) p50 {ratios['b_over_a_p50']:.2f}x  (+{ratios['b_minus_a_p50_ms']:.3f} ms)"
        f"   (c)/(a) p50 {ratios['c_over_a_p50']:.2f}x"
        f"   (c)/(e) p50 {ratios['c_over_e_p50']:.2f}x"
    )
    lines.append("the blocking call's figures:")
    lines.extend(_ends(results))
    return "\n".join(lines)
