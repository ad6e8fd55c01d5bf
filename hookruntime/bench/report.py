"""The text that ``hookruntime bench queued`` prints from its results."""

from __future__ import annotations

from typing import Any

from . import scaleout

__all__ = ["render"]


def render(results: dict[str, Any]) -> str:
    lines = [
        f"queued deliveries against a loopback receiver (own process), {results['http_client']}"
        " client:",
    ]
    for each, rate in results["a_raw_by_backend"].items():
        lines.append(f"  (a) raw ceiling, {each:<11} {rate:>9.1f} req/s")
    for key, label in (
        ("b_sqlite", "(b) SQLite, sender process"),
        ("b_sqlite_one_process", "    SQLite, embedded default"),
        ("b_sqlite_aiohttp", "    SQLite, one proc. aiohttp"),
        ("c_postgresql", "(c) PostgreSQL, sender proc."),
        ("c_postgresql_one_process", "    PostgreSQL, emb. default"),
        ("c_postgresql_aiohttp", "    PostgreSQL, 1 proc aiohttp"),
    ):
        if key in results:
            r = results[key]
            lines.append(
                f"  {label:<28} {r['per_second']:>9.1f} deliveries/s  {r['http_client']:<7} "
                f"({r['n']} in {r['seconds']} s; emitting took {r['emit_seconds']} s)"
            )
    ratios = results["ratios"]
    shown = []
    for suffix, label in (("", "ratios:"), ("_one_process", "one process:")):
        pairs = [
            f"({x})/(a) {ratios[f'{x}{suffix}_over_a']:.2f}"
            for x in ("b", "c")
            if f"{x}{suffix}_over_a" in ratios
        ]
        shown.append(f"{label} {'  '.join(pairs)}")
    lines.append(f"  {'   '.join(shown)}")
    d = results["d_idle_latency"]
    lines.append(
        f"  (d) idle enqueue->attempt    p50 {d['p50_ms']:.1f} ms  p99 {d['p99_ms']:.1f} ms"
    )
    if "f_metrics" in results:
        f = results["f_metrics"]
        lines.append(
            f"  (f) metrics on / off         {f['on_over_off']:.3f}  (SQLite, sender process; "
            f"off {f['off_per_second']}, on {f['on_per_second']} deliveries/s)"
        )
        lines.append(
            f"      CPU per delivery         off {f['cpu_us_per_delivery_off']} us, "
            f"on {f['cpu_us_per_delivery_on']} us (the worker's process)"
        )
    if "e_worker_backlog" in results:
        e = results["e_worker_backlog"]
        lines.append(
            f"  (e) worker peak RSS          {e['peak_rss_mb']} MB with a {e['backlog']}"
            f"-event backlog ({e['delivered_meanwhile']} delivered in {e['seconds']} s)"
        )
    if results.get("g_celery"):
        for r in results["g_celery"]["runs"]:
            lines.append(
                f"  (g) Celery + Redis, {r['pool']:<7} {r['per_second']:>9.1f} deliveries/s  "
                f"({r['concurrency']} at once; {r['n']} in {r['seconds']} s, "
                f"enqueueing took {r['enqueue_seconds']} s)"
            )
    else:
        lines.append("  (g) Celery baseline skipped: pip install 'hookruntime[bench]' and Redis")
    if "h_scaleout" in results:
        lines.append("  (h) scale-out on one PostgreSQL backlog:")
        lines.extend(scaleout.render(results["h_scaleout"]))
    v = results["verdict"]
    lines.append(
        f"  verdict: embedded default / its client's ceiling "
        f"{v['default_over_own_ceiling']:.2f}; best ({v['best']}, {v['best_per_second']}/s) "
        f"/ one-process aiohttp {v['best_over_one_process_aiohttp']:.2f}"
        + (f"; / Celery {v['best_over_celery']:.2f}" if "best_over_celery" in v else "")
    )
    lines.append(f"  load average {results['load_average']}")
    lines.append(f"  bench process peak RSS       {results['bench_process_peak_rss_mb']} MB")
    return "\n".join(lines)
