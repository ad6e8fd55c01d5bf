"""`hookruntime bench queued --quick`: every part measured and printed in one run (the
numbers are not checked: a few hundred events on a shared machine say nothing)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import PG_ADMIN

from hookruntime.bench import celery_baseline, clients, queued


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "hookruntime.cli", "bench", "queued", "--quick", *args],
        env={**os.environ, "HOOKRUNTIME_HTTP_CLIENT": "auto"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return result


def test_bench_queued_quick_measures_ceilings_layouts_celery_and_scale_out() -> None:
    results = json.loads(bench("--postgres-url", PG_ADMIN, "--json").stdout)
    printed = queued.render(results)
    for words in ("raw ceiling, aiohttp", "embedded default", "sender process", "verdict:"):
        assert words in printed, printed
    assert "scale-out on one PostgreSQL backlog" in printed
    assert (
        "Celery + Redis" if celery_baseline.available() else "Celery baseline skipped"
    ) in printed
    assert set(results["a_raw_by_backend"]) == set(clients.measured_backends())
    assert all(rate > 0 for rate in results["a_raw_by_backend"].values())
    layouts = {"_one_process": False, "": True}
    if results["http_client"] != "aiohttp":
        layouts["_aiohttp"] = False
    for part in ("b_sqlite", "c_postgresql"):
        for suffix, sender in layouts.items():
            measured = results[part + suffix]
            assert measured["n"] == 300 and measured["per_second"] > 0
            assert measured["sender_process"] is sender
    assert results["b_sqlite_one_process"]["http_client"] == results["http_client"]
    scaleout = results["h_scaleout"]
    assert [run["processes"] for run in scaleout["runs"]] == [1, 2, 3]
    assert all(run["postgres_cpu_us_per_delivery"] > 0 for run in scaleout["runs"])
    verdict = results["verdict"]
    assert verdict["default_over_own_ceiling"] > 0
    assert verdict["best_over_one_process_aiohttp"] > 0
    if celery_baseline.available():
        assert {run["pool"] for run in results["g_celery"]["runs"]} == {"prefork", "threads"}
        assert verdict["best_over_celery"] > 0
    else:
        assert results["g_celery"] is None
