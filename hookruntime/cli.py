"""The ``hookruntime`` command: a thin layer over the Python API.

Every flag falls back to a ``HOOKRUNTIME_*`` environment variable (``--org`` to
``HOOKRUNTIME_ORG``, ``--database-url`` to ``HOOKRUNTIME_DATABASE_URL``, …);
``--json`` prints machine-readable output. The verbs are in
:mod:`hookruntime.commands`, ``serve`` and ``worker`` in :mod:`hookruntime.service`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from . import eventloop
from .commands import (
    cmd_bench_blocking,
    cmd_bench_clients,
    cmd_bench_queued,
    cmd_call,
    cmd_deliveries_list,
    cmd_deliveries_retry,
    cmd_deliveries_show,
    cmd_emit,
    cmd_keys_create,
    cmd_keys_list,
    cmd_keys_revoke,
    cmd_master_key,
    cmd_migrate,
    cmd_registrations_create,
    cmd_registrations_delete,
    cmd_registrations_list,
    cmd_topics,
)
from .commands import env as _env
from .config import Settings
from .errors import (
    ConfigurationError,
    ConflictError,
    HookRuntimeError,
    NotFoundError,
    PluginError,
    SchemaNotCurrent,
    StoreUnavailable,
    ValidationError,
)
from .observe.logs import LEVELS, configure_logging
from .service import cmd_serve, cmd_worker

__all__ = ["main"]

EXIT_CODES = """exit codes:
  0  success
  1  failure (the database locked or failing, the port in use, an unexpected error)
  2  bad usage or invalid input (flags or HOOKRUNTIME_* variables)
  3  not found
  4  conflict (stale rev)
  5  configuration or plugin error (the database unreachable or not migrated)
  6  a blocking call was denied (`call`)
"""

#: Exit code per error, the first that matches; any other HookRuntimeError is 1.
_EXIT: tuple[tuple[type[HookRuntimeError] | tuple[type[HookRuntimeError], ...], int], ...] = (
    (ValidationError, 2),
    (NotFoundError, 3),
    (ConflictError, 4),
    ((ConfigurationError, PluginError, StoreUnavailable, SchemaNotCurrent), 5),
    (HookRuntimeError, 1),
)

Verb = Callable[[argparse.Namespace], Awaitable[int]]


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
    common.add_argument(
        "--log-level",
        choices=LEVELS,
        default=_env("LOG_LEVEL"),
        help="HOOKRUNTIME_LOG_LEVEL; default info for serve and worker, warning otherwise",
    )
    common.add_argument(
        "--log-format",
        choices=["text", "json"],
        default=_env("LOG_FORMAT", "text"),
        help="log lines as text or one JSON object each (HOOKRUNTIME_LOG_FORMAT)",
    )
    org = argparse.ArgumentParser(add_help=False)
    org.add_argument(
        "--org", default=_env("ORG"), required=_env("ORG") is None, help="the org (HOOKRUNTIME_ORG)"
    )

    parser = argparse.ArgumentParser(
        prog="hookruntime",
        description="Blocking hooks under one deadline, and a durable outbox for the rest.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(
        parent: Any,
        name: str,
        handler: Verb,
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
    serve.add_argument("--port", type=int, help="HOOKRUNTIME_PORT (default 8000)")
    serve.add_argument(
        "--allow-private-targets",
        action="store_true",
        default=None,
        help="allow receivers on loopback/private networks, for development "
        "(HOOKRUNTIME_ALLOW_PRIVATE_TARGETS=1)",
    )
    serve.add_argument(
        "--sender-process",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="send from a child process, on another core (HOOKRUNTIME_SENDER_PROCESS=1); "
        "the default where the process may use two cores",
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
        help="delivery loops in this process (HOOKRUNTIME_WORKERS, default 1)",
    )
    worker.add_argument(
        "--concurrency",
        type=int,
        help="requests in flight per loop (HOOKRUNTIME_CONCURRENCY, default 128)",
    )
    worker.add_argument(
        "--sender-process",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="send from a child process, on another core (HOOKRUNTIME_SENDER_PROCESS=1); "
        "the default where the process may use two cores",
    )
    worker.add_argument(
        "--metrics-port",
        type=int,
        default=int(_env("METRICS_PORT", "0") or 0),
        help="serve Prometheus GET /metrics on this port, on HOOKRUNTIME_HOST "
        "(HOOKRUNTIME_METRICS_PORT; default: none)",
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

    bench_clients = verb(
        bench_verbs,
        "clients",
        cmd_bench_clients,
        "Raw requests/s and event-loop CPU per request of each HTTP client backend.",
    )
    bench_clients.add_argument("--n", type=int, default=10_000, help="requests per run")
    bench_clients.add_argument("--repeats", type=int, default=3, help="runs per backend")
    bench_clients.add_argument(
        "--work-us", type=float, default=0.0, help="host Python per request, in microseconds"
    )

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
    bench_queued.add_argument(
        "--quick", action="store_true", help="300 events per part: every part, in seconds"
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
    """Run one verb; every error is one line on stderr and a documented exit code."""
    args = _parser().parse_args(argv)
    handler: Verb = args.handler
    if args.log_format not in ("text", "json"):  # from the environment, unchecked by argparse
        print(f"error: log format must be text or json, not {args.log_format!r}", file=sys.stderr)
        return 2
    if args.log_level is not None and args.log_level not in LEVELS:
        print(f"error: log level must be one of {', '.join(LEVELS)}", file=sys.stderr)
        return 2
    serving = args.verb in ("serve", "worker")
    configure_logging(args.log_level or ("info" if serving else "warning"), args.log_format)
    try:
        Settings.from_env()  # a malformed HOOKRUNTIME_* variable is bad input, said once
    except ConfigurationError as exc:
        return _fail(exc, 2)
    try:
        return eventloop.run(handler, args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a script gets one line, never a traceback
        error = _sole(exc)
        for kind, code in _EXIT:
            if isinstance(error, kind):
                return _fail(error, code)
        return _fail(f"unexpected {type(error).__name__}: {error}", 1)


def _sole(exc: BaseException) -> BaseException:
    """The one error inside task groups' exception groups, when there is one."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def _fail(error: object, code: int) -> int:
    text = " ".join(str(error).split())  # one line, even for a multi-line message
    print(f"error: {text}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
