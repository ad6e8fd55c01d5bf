"""The ``hookruntime`` command: a thin layer over the Python API.

Every flag falls back to a ``HOOKRUNTIME_*`` environment variable (``--org`` to
``HOOKRUNTIME_ORG``, ``--database-url`` to ``HOOKRUNTIME_DATABASE_URL``, …);
``--json`` prints machine-readable output.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio

from .errors import (
    ConfigurationError,
    ConflictError,
    HookRuntimeError,
    NotFoundError,
    PluginError,
    ValidationError,
)
from .runtime import HookRuntime
from .store.crypto import generate_master_key

__all__ = ["main"]

EXIT_CODES = """exit codes:
  0  success
  1  failure (database unreachable, unexpected error)
  2  bad usage or invalid input
  3  not found
  4  conflict (stale rev)
  5  configuration or plugin error
  6  a blocking call was denied (`call`)
"""

Handler = Callable[[argparse.Namespace], Awaitable[int]]


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"HOOKRUNTIME_{name}", default)


def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2, default=str) if args.json else text)


def _runtime(args: argparse.Namespace) -> HookRuntime:
    return HookRuntime(args.database_url, workers=0)


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
    async with _runtime(args) as runtime:
        _emit(
            args,
            {"migrated": True, "database": runtime.database.dialect},
            f"schema is up to date on {runtime.database.dialect}",
        )
    return 0


async def cmd_master_key(args: argparse.Namespace) -> int:
    key = generate_master_key()
    _emit(args, {"master_key": key}, key)
    return 0


async def cmd_keys_create(args: argparse.Namespace) -> int:
    async with _runtime(args) as runtime:
        key = await runtime.keys.create(org=args.org, scopes=args.scope or [], name=args.name)
    data = {"key": key.key, "org": key.org, "scopes": list(key.scopes), "id": key.id}
    _emit(
        args,
        data,
        f"{key.key}\n(shown once; id {key.id}, org {key.org}, scopes {' '.join(key.scopes)})",
    )
    return 0


async def cmd_keys_list(args: argparse.Namespace) -> int:
    async with _runtime(args) as runtime:
        keys = await runtime.keys.list(org=args.org)
    lines = [
        f"{k.id}  hrk_{k.prefix}_…  {'revoked' if k.revoked_at else 'active':<7}  "
        f"{' '.join(k.scopes)}"
        for k in keys
    ]
    _emit(args, [k.to_dict() for k in keys], "\n".join(lines) or "no keys")
    return 0


async def cmd_keys_revoke(args: argparse.Namespace) -> int:
    async with _runtime(args) as runtime:
        await runtime.keys.revoke(args.id, org=args.org)
    _emit(args, {"revoked": args.id}, f"revoked {args.id}")
    return 0


async def cmd_registrations_list(args: argparse.Namespace) -> int:
    async with _runtime(args) as runtime:
        items = await runtime.registrations.list(org=args.org, topic=args.topic)
    lines = [
        f"{r.id}  rev {r.rev:<12}  {r.profile:<11}  {'active' if r.active else 'inactive':<8}"
        f"  {r.url}  {','.join(r.topics)}"
        for r in items
    ]
    _emit(args, [r.to_dict() for r in items], "\n".join(lines) or "no registrations")
    return 0


async def cmd_registrations_create(args: argparse.Namespace) -> int:
    headers = {}
    for item in args.header or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise ValidationError.single("header", f"{item!r} is not NAME=VALUE")
        headers[name] = value
    async with _runtime(args) as runtime:
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
    _emit(
        args,
        reg.to_dict(),
        f"{reg.id} rev {reg.rev} profile {reg.profile}\nsecret (shown once): {reg.secret}",
    )
    return 0


async def cmd_registrations_delete(args: argparse.Namespace) -> int:
    async with _runtime(args) as runtime:
        await runtime.registrations.delete(args.id, org=args.org, rev=args.rev)
    _emit(args, {"deleted": args.id}, f"deleted {args.id}")
    return 0


async def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .api import create_app

    runtime = HookRuntime(args.database_url, allow_private_targets=args.allow_private_targets)
    if runtime.settings.allow_private_targets:
        print(
            "WARNING: HOOKRUNTIME_ALLOW_PRIVATE_TARGETS is on: receivers on loopback and "
            "private networks are allowed. Never run like this in production.",
            file=sys.stderr,
        )
    config = uvicorn.Config(
        create_app(runtime), host=args.host, port=args.port, log_level="info", lifespan="on"
    )
    await uvicorn.Server(config).serve()
    return 0


async def cmd_call(args: argparse.Namespace) -> int:
    data = _json_argument(args.data)
    async with _runtime(args) as runtime:
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
    _emit(args, result.to_dict(), "\n".join(lines))
    return 0 if result.allowed else 6


async def cmd_bench_blocking(args: argparse.Namespace) -> int:
    from .bench import blocking

    results = await anyio.to_thread.run_sync(blocking.run, args.n)
    _emit(args, results, blocking.render(results))
    return 0


async def cmd_worker(args: argparse.Namespace) -> int:
    import signal

    runtime = HookRuntime(
        args.database_url,
        workers=max(args.workers or 1, 1),
        concurrency=args.concurrency,
        lease=args.lease,
        allow_private_targets=args.allow_private_targets,
    )
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with runtime:
            print(
                f"worker {runtime.workers[0].id} delivering on {runtime.database.dialect}",
                file=sys.stderr,
                flush=True,
            )
            async for _signal in signals:
                print("stopping: finishing in-flight deliveries", file=sys.stderr, flush=True)
                break
    return 0


async def cmd_emit(args: argparse.Namespace) -> int:
    data = _json_argument(args.data)
    async with _runtime(args) as runtime:
        ids, count = await runtime.outbox.publish(args.topic, [data], org=args.org, keys=[args.key])
    _emit(args, {"id": ids[0], "deliveries": count}, f"{ids[0]} ({count} deliveries)")
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
    async with _runtime(args) as runtime:
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
    _emit(args, [d.to_dict() for d in items], "\n".join(lines) or "no deliveries")
    return 0


async def cmd_deliveries_show(args: argparse.Namespace) -> int:
    async with _runtime(args) as runtime:
        item = await runtime.deliveries.get(args.id, org=args.org)
    lines = [
        f"{item.id}  {item.status}  event {item.event_id}  registration {item.registration_id}"
    ]
    lines += [
        f"  #{a.number} {a.outcome:<9} {a.status_code or '-':>3} {a.latency_ms:8.1f} ms  "
        f"{a.error or ''}"
        for a in item.attempt_log
    ]
    _emit(args, item.to_dict(), "\n".join(lines))
    return 0


async def cmd_deliveries_retry(args: argparse.Namespace) -> int:
    async with _runtime(args) as runtime:
        if args.id:
            item = await runtime.deliveries.retry(args.id, org=args.org)
            _emit(args, item.to_dict(), f"{item.id} is {item.status} again")
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
    _emit(args, {"retried": count}, f"retried {count} deliveries")
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


async def cmd_bench_queued(args: argparse.Namespace) -> int:
    from .bench import queued

    database_url = args.postgres_url
    results = await anyio.to_thread.run_sync(queued.run, args.n, database_url, args.backlog)
    _emit(args, results, queued.render(results))
    return 0


def _json_argument(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValidationError.single("data", f"not JSON: {exc}") from None


# -- parser ------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--database-url",
        default=_env("DATABASE_URL"),
        help="sqlite:///file.db or postgresql://… "
        "(HOOKRUNTIME_DATABASE_URL; default sqlite:///hookruntime.db)",
    )
    common.add_argument("--json", action="store_true", help="machine-readable output")
    org = argparse.ArgumentParser(add_help=False)
    org.add_argument(
        "--org", default=_env("ORG"), required=_env("ORG") is None, help="the org (HOOKRUNTIME_ORG)"
    )

    parser = argparse.ArgumentParser(
        prog="hookruntime",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(
        parent: Any,
        name: str,
        handler: Handler,
        help: str,
        parents: Sequence[argparse.ArgumentParser] = (),
    ) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = parent.add_parser(
            name,
            help=help,
            description=help,
            parents=[common, *parents],
            epilog=EXIT_CODES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.set_defaults(handler=handler)
        return sub

    serve = verb(
        verbs,
        "serve",
        cmd_serve,
        "Serve the HTTP API with in-process delivery (SQLite by default).",
    )
    serve.add_argument("--host", default=_env("HOST", "127.0.0.1"), help="HOOKRUNTIME_HOST")
    serve.add_argument(
        "--port", type=int, default=int(_env("PORT", "8000") or 8000), help="HOOKRUNTIME_PORT"
    )
    serve.add_argument(
        "--allow-private-targets",
        action="store_true",
        default=None,
        help="allow receivers on loopback/private networks, for development "
        "(HOOKRUNTIME_ALLOW_PRIVATE_TARGETS=1)",
    )
    verb(verbs, "migrate", cmd_migrate, "Bring the database schema up to date.")
    verb(
        verbs,
        "master-key",
        cmd_master_key,
        "Print a new random master key for HOOKRUNTIME_MASTER_KEY.",
    )
    topics = verb(verbs, "topics", cmd_topics, "List the catalog of topics from every plugin.")
    topics.add_argument("--mode", choices=["blocking", "queued"], help="only this mode")

    keys = verbs.add_parser("keys", help="Create, list and revoke API keys.")
    key_verbs = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = verb(
        key_verbs, "create", cmd_keys_create, "Create an API key; it is printed once.", [org]
    )
    create.add_argument(
        "--scope",
        action="append",
        help="a scope to grant; repeat for more (webhooks:manage, events:emit, "
        "hooks:call, deliveries:read, or a topic scope)",
    )
    create.add_argument("--name", help="a label for the key")
    verb(key_verbs, "list", cmd_keys_list, "List an org's API keys (never their secrets).", [org])
    revoke = verb(key_verbs, "revoke", cmd_keys_revoke, "Revoke an API key by id.", [org])
    revoke.add_argument("id")

    worker = verb(
        verbs,
        "worker",
        cmd_worker,
        "Deliver queued events until SIGTERM (more processes or hosts on PostgreSQL).",
    )
    worker.add_argument(
        "--workers",
        type=int,
        default=int(_env("WORKERS", "1") or 1),
        help="delivery loops in this process (HOOKRUNTIME_WORKERS)",
    )
    worker.add_argument(
        "--concurrency",
        type=int,
        help="requests in flight per loop (HOOKRUNTIME_CONCURRENCY, default 256)",
    )
    worker.add_argument(
        "--lease",
        type=float,
        help="seconds a claimed delivery stays claimed (HOOKRUNTIME_LEASE, default 60)",
    )
    worker.add_argument(
        "--allow-private-targets",
        action="store_true",
        default=None,
        help="allow receivers on loopback/private networks (development)",
    )

    emit = verb(verbs, "emit", cmd_emit, "Write one event of a queued topic to the outbox.", [org])
    emit.add_argument("topic", help="a queued topic, e.g. punch.create")
    emit.add_argument("data", help="the topic's data as JSON")
    emit.add_argument("--key", help="ordering key (ordered registrations keep its order)")

    dels = verbs.add_parser("deliveries", help="List, show and retry deliveries.")
    del_verbs = dels.add_subparsers(dest="action", required=True, metavar="ACTION")
    filters = argparse.ArgumentParser(add_help=False)
    filters.add_argument(
        "--status", choices=["pending", "delivering", "delivered", "failed", "dead"]
    )
    filters.add_argument("--topic")
    filters.add_argument("--registration", help="a registration id")
    filters.add_argument("--since", help="created at or after (ISO 8601)")
    filters.add_argument("--until", help="created before (ISO 8601)")
    listing_d = verb(
        del_verbs, "list", cmd_deliveries_list, "List deliveries, oldest first.", [org, filters]
    )
    listing_d.add_argument("--limit", type=int, default=100)
    listing_d.add_argument("--after", help="continue after this delivery id")
    show = verb(del_verbs, "show", cmd_deliveries_show, "One delivery with its attempts.", [org])
    show.add_argument("id")
    again = verb(
        del_verbs,
        "retry",
        cmd_deliveries_retry,
        "Retry one delivery by id, or every one matching the filters (default: dead).",
        [org, filters],
    )
    again.add_argument("id", nargs="?", help="one delivery; omit to retry by filter")

    call = verb(
        verbs,
        "call",
        cmd_call,
        "Make a blocking call and print the merged result (exit 6 when denied).",
        [org],
    )
    call.add_argument("topic", help="a blocking topic, e.g. user_logged_in")
    call.add_argument("data", help="the topic's data as JSON")
    call.add_argument("--deadline", type=float, help="seconds, when tighter than the topic's")

    bench = verbs.add_parser("bench", help="Benchmarks that print ratios measured in one run.")
    bench_verbs = bench.add_subparsers(dest="action", required=True, metavar="ACTION")
    bench_blocking = verb(
        bench_verbs,
        "blocking",
        cmd_bench_blocking,
        "Blocking call overhead over a raw POST, and deadline precision.",
    )
    bench_blocking.add_argument("--n", type=int, default=2000, help="calls per measurement")

    bench_queued = verb(
        bench_verbs,
        "queued",
        cmd_bench_queued,
        "Deliveries/s end to end on SQLite and PostgreSQL beside the raw client ceiling.",
    )
    bench_queued.add_argument("--n", type=int, default=20_000, help="events per measurement")
    bench_queued.add_argument(
        "--postgres-url",
        default=_env("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="a PostgreSQL server to create a scratch database on ('' skips (c))",
    )
    bench_queued.add_argument(
        "--backlog", type=int, default=0, help="also measure a worker's RSS on this backlog"
    )

    regs = verbs.add_parser("registrations", help="List, create and delete registrations.")
    reg_verbs = regs.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = verb(reg_verbs, "list", cmd_registrations_list, "List an org's registrations.", [org])
    listing.add_argument("--topic", help="only registrations for this topic")
    make = verb(
        reg_verbs,
        "create",
        cmd_registrations_create,
        "Register a receiver URL for topics; prints the secret once.",
        [org],
    )
    make.add_argument("--topic", action="append", required=True, help="a topic; repeat for more")
    make.add_argument("--url", required=True, help="the receiver's URL")
    make.add_argument(
        "--profile",
        choices=["standard", "jws", "servicehook", "envelope"],
        help="wire format (default: the topics' own)",
    )
    make.add_argument("--secret", help="signing secret (default: generated)")
    make.add_argument(
        "--header",
        action="append",
        metavar="NAME=VALUE",
        help="a custom header sent on every request; repeat for more",
    )
    make.add_argument("--priority", type=int, default=0, help="lower runs first (blocking)")
    make.add_argument("--on-failure", choices=["ignore", "deny"], help="blocking failure policy")
    make.add_argument("--timeout", type=float, help="per-request timeout in seconds")
    make.add_argument("--ordered", action="store_true", help="deliver each key in emit order")
    drop = verb(reg_verbs, "delete", cmd_registrations_delete, "Delete a registration.", [org])
    drop.add_argument("id")
    drop.add_argument("--rev", help="only if still at this rev")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return anyio.run(handler, args)
    except ValidationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except NotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except ConflictError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 4
    except (ConfigurationError, PluginError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 5
    except HookRuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
