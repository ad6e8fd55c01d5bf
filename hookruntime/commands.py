"""The verbs of the ``hookruntime`` command, each a thin layer over the Python API;
``serve`` and ``worker`` are in :mod:`hookruntime.service`. The parser that reaches them
is in :mod:`hookruntime.cli`."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio

from .errors import ValidationError
from .runtime import HookRuntime
from .store.crypto import generate_master_key
from .store.engine import Database
from .store.migrate import require_current

__all__ = ["env"]

log = logging.getLogger("hookruntime.cli")


def env(name: str, default: str | None = None) -> str | None:
    """The ``HOOKRUNTIME_<name>`` variable, the fallback of every flag."""
    return os.environ.get(f"HOOKRUNTIME_{name}", default)


def _print(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2, default=str) if args.json else text)


@asynccontextmanager
async def _opened(args: argparse.Namespace) -> AsyncIterator[HookRuntime]:
    """The open runtime of a verb that is not ``migrate``, ``serve`` or ``worker``: it
    never changes the schema, and refuses a database that is not migrated (a SQLite
    file that does not exist is left uncreated)."""
    runtime = HookRuntime(args.database_url, workers=0, auto_migrate=False)
    database = Database(runtime.settings.database_url)
    try:
        await require_current(database)
    finally:
        await database.dispose()
    async with runtime:
        yield runtime


# -- verbs -------------------------------------------------------------------------


async def cmd_topics(args: argparse.Namespace) -> int:
    from .api.app import topic_json

    runtime = HookRuntime(args.database_url, workers=0)
    topics = [t for t in topic_json(runtime) if args.mode in (None, t["mode"])]
    if args.json:
        print(json.dumps(topics, indent=2))
        return 0
    width = max(len(t["name"]) for t in topics)
    for t in topics:
        scopes = ",".join(t["scopes"]) or "-"
        print(
            f"{t['name']:<{width}}  {t['mode']:<8}  {t['plugin']:<12}  {t['profile']:<11}  {scopes}"
        )
    return 0


async def cmd_migrate(args: argparse.Namespace) -> int:
    async with HookRuntime(args.database_url, workers=0) as runtime:
        _print(
            args,
            {"migrated": True, "database": runtime.database.dialect},
            f"schema is up to date on {runtime.database.dialect}",
        )
    return 0


async def cmd_master_key(args: argparse.Namespace) -> int:
    key = generate_master_key()
    _print(args, {"master_key": key}, key)
    return 0


async def cmd_keys_create(args: argparse.Namespace) -> int:
    async with _opened(args) as runtime:
        key = await runtime.keys.create(org=args.org, scopes=args.scope or [], name=args.name)
    data = {"key": key.key, "org": key.org, "scopes": list(key.scopes), "id": key.id}
    _print(
        args,
        data,
        f"{key.key}\n(shown once; id {key.id}, org {key.org}, scopes {' '.join(key.scopes)})",
    )
    return 0


async def cmd_keys_list(args: argparse.Namespace) -> int:
    async with _opened(args) as runtime:
        keys = await runtime.keys.list(org=args.org)
    lines = [
        f"{k.id}  hrk_{k.prefix}_…  {'revoked' if k.revoked_at else 'active':<7}  "
        f"{' '.join(k.scopes)}"
        for k in keys
    ]
    _print(args, [k.to_dict() for k in keys], "\n".join(lines) or "no keys")
    return 0


async def cmd_keys_revoke(args: argparse.Namespace) -> int:
    async with _opened(args) as runtime:
        await runtime.keys.revoke(args.id, org=args.org)
    _print(args, {"revoked": args.id}, f"revoked {args.id}")
    return 0


async def cmd_registrations_list(args: argparse.Namespace) -> int:
    async with _opened(args) as runtime:
        items = await runtime.registrations.list(org=args.org, topic=args.topic)
    lines = [
        f"{r.id}  rev {r.rev:<12}  {r.profile:<11}  {'active' if r.active else 'inactive':<8}"
        f"  {r.url}  {','.join(r.topics)}"
        for r in items
    ]
    _print(args, [r.to_dict() for r in items], "\n".join(lines) or "no registrations")
    return 0


async def cmd_registrations_create(args: argparse.Namespace) -> int:
    headers = {}
    for item in args.header or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise ValidationError.single("header", f"{item!r} is not NAME=VALUE")
        headers[name] = value
    async with _opened(args) as runtime:
        reg = await runtime.registrations.create(
            org=args.org,
            topics=args.topic,
            url=args.url,
            profile=args.profile,
            secret=args.secret,
            priority=args.priority,
            on_failure=args.on_failure,
            timeout=args.timeout,
            ordered=args.ordered,
            headers=headers,
        )
    _print(
        args,
        reg.to_dict(),
        f"{reg.id} rev {reg.rev} profile {reg.profile}\nsecret (shown once): {reg.secret}",
    )
    return 0


async def cmd_registrations_delete(args: argparse.Namespace) -> int:
    async with _opened(args) as runtime:
        await runtime.registrations.delete(args.id, org=args.org, rev=args.rev)
    _print(args, {"deleted": args.id}, f"deleted {args.id}")
    return 0


async def cmd_call(args: argparse.Namespace) -> int:
    data = _json_argument(args.data)
    async with _opened(args) as runtime:
        result = await runtime.call(args.topic, data, org=args.org, deadline=args.deadline)
    verdict = "allowed" if result.allowed else f"denied: {result.reason}"
    lines = [
        f"{verdict} in {result.elapsed * 1000:.1f} ms" + (" (partial)" if result.partial else "")
    ]
    lines += [
        f"  {o.registration_id}  {o.status:<12} {o.http_status or '-':>3}  "
        f"{o.latency * 1000:7.1f} ms  {o.detail or ''}"
        for o in result.outcomes
    ]
    if result.patch:
        lines.append(f"patch: {json.dumps(result.patch)}")
    _print(args, result.to_dict(), "\n".join(lines))
    return 0 if result.allowed else 6


async def cmd_bench_blocking(args: argparse.Namespace) -> int:
    from .bench import blocking

    results = await anyio.to_thread.run_sync(blocking.run, args.n)
    _print(args, results, blocking.render(results))
    return 0


async def cmd_emit(args: argparse.Namespace) -> int:
    data = _json_argument(args.data)
    async with _opened(args) as runtime:
        published = await runtime.publish(args.topic, [data], org=args.org, keys=[args.key])
    event_id, count = published.ids[0], published.deliveries
    _print(args, {"id": event_id, "deliveries": count}, f"{event_id} ({count} deliveries)")
    return 0


def _since(text: str | None) -> float | None:
    if text is None:
        return None
    from datetime import datetime

    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise ValidationError.single("since", f"{text!r} is not an ISO 8601 time") from None


async def cmd_deliveries_list(args: argparse.Namespace) -> int:
    async with _opened(args) as runtime:
        items = await runtime.deliveries.list(
            org=args.org,
            status=args.status,
            topic=args.topic,
            registration_id=args.registration,
            since=_since(args.since),
            until=_since(args.until),
            limit=args.limit,
            after=args.after,
        )
    lines = [
        f"{d.id}  {d.status:<10} {d.attempts:>2} tries  {d.topic:<24} {d.registration_id}"
        f"  {d.last_error or ''}"
        for d in items
    ]
    _print(args, [d.to_dict() for d in items], "\n".join(lines) or "no deliveries")
    return 0


async def cmd_deliveries_show(args: argparse.Namespace) -> int:
    async with _opened(args) as runtime:
        item = await runtime.deliveries.get(args.id, org=args.org)
    lines = [
        f"{item.id}  {item.status}  event {item.event_id}  registration {item.registration_id}"
    ]
    lines += [
        f"  #{a.number} {a.outcome:<9} {a.status_code or '-':>3} {a.latency_ms:8.1f} ms  "
        f"{a.error or ''}"
        for a in item.attempt_log
    ]
    _print(args, item.to_dict(), "\n".join(lines))
    return 0


async def cmd_deliveries_retry(args: argparse.Namespace) -> int:
    async with _opened(args) as runtime:
        if args.id:
            item = await runtime.deliveries.retry(args.id, org=args.org)
            _print(args, item.to_dict(), f"{item.id} is {item.status} again")
            return 0
        bar = _Progress(enabled=not args.json and sys.stderr.isatty())
        count = await runtime.deliveries.retry_many(
            org=args.org,
            status=args.status or "dead",
            topic=args.topic,
            registration_id=args.registration,
            since=_since(args.since),
            until=_since(args.until),
            progress=bar.update,
        )
        bar.close()
    _print(args, {"retried": count}, f"retried {count} deliveries")
    return 0


class _Progress:
    """A one-line progress bar on stderr, for a terminal only."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def update(self, done: int, total: int) -> None:
        if self.enabled and total:
            filled = int(30 * done / total)
            sys.stderr.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {done}/{total}")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


async def cmd_bench_clients(args: argparse.Namespace) -> int:
    from .bench import clients

    results = await anyio.to_thread.run_sync(clients.run, args.n, args.repeats, args.work_us)
    _print(args, results, clients.render(results))
    return 0


async def cmd_bench_queued(args: argparse.Namespace) -> int:
    from .bench import queued

    database_url = args.postgres_url
    results = await anyio.to_thread.run_sync(
        queued.run, args.n, database_url, args.backlog, args.quick
    )
    _print(args, results, queued.render(results))
    return 0


def _json_argument(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValidationError.single("data", f"not JSON: {exc}") from None
