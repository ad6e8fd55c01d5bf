"""Logs: the ``hookruntime`` logger tree, its lines as data (``extra=`` fields), and the
one place that configures handlers (the CLI, or a host that wants our format).

A line per delivery outcome (``hookruntime.delivery``) and per blocking call
(``hookruntime.call``) at INFO, each naming what a person looks for: event, delivery,
registration, org, topic, attempt, status, latency. Headers, URLs, payloads and
secrets are never put in a line. Disabled, INFO costs one ``isEnabledFor`` per batch.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..blocking.result import CallResult
    from ..queue.records import Record

__all__ = [
    "LEVELS",
    "JsonFormatter",
    "TextFormatter",
    "configure_logging",
    "log_call",
    "log_results",
]

LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("text", "json")

# A library does not print unless its host asks: without this, a warning with no
# handler configured anywhere goes to Python's last-resort handler on stderr.
logging.getLogger("hookruntime").addHandler(logging.NullHandler())

_deliveries = logging.getLogger("hookruntime.delivery")
_calls = logging.getLogger("hookruntime.call")

# A URL in an error message, kept to scheme, host and path: a receiver's URL may carry a
# token in its query or its user-info.
_URL = re.compile(r"(?P<keep>[a-zA-Z][a-zA-Z0-9+.-]*://)(?:[^/@\s]*@)?(?P<rest>[^?#\s]*)[^\s]*")


def scrub(text: str | None) -> str | None:
    """``text`` with every URL's query, fragment and user-info left out."""
    if text is None or "://" not in text:
        return text
    return _URL.sub(r"\g<keep>\g<rest>", text)


# What every LogRecord has; the rest of its __dict__ came in through ``extra=``.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def fields(record: logging.LogRecord) -> dict[str, Any]:
    """The ``extra=`` fields of a record."""
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, then the record's fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **fields(record),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    """``time level logger: message key=value …``: readable, with the same fields."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extra = fields(record)
        if not extra:
            return text
        head, newline, tail = text.partition("\n")  # a traceback stays after the fields
        pairs = " ".join(f"{k}={v}" for k, v in extra.items())
        return f"{head} {pairs}{newline}{tail}"


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """Ours, so that configuring again replaces it instead of adding a second."""


def configure_logging(
    level: str = "info", fmt: str = "text", stream: IO[str] | None = None
) -> None:
    """Send every log line (ours, and the server's, which propagate to the root) to
    ``stream`` (stderr) in ``fmt``, at ``level`` and above for the ``hookruntime`` tree."""
    if level.lower() not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}")
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}")
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(handler)
    handler = _Handler(sys.stderr if stream is None else stream)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root.addHandler(handler)
    numeric = logging.getLevelName(level.upper())
    # DEBUG is for our own tree: other libraries' debug lines (SQL, asyncio) drown it.
    root.setLevel(max(numeric, logging.INFO))
    logging.getLogger("hookruntime").setLevel(numeric)


def log_results(records: Sequence[Record]) -> None:
    """A line per recorded delivery attempt."""
    if not _deliveries.isEnabledFor(logging.INFO):
        return
    for r in records:
        status = r.next_state.status
        _deliveries.info(
            "delivery %s attempt %d %s (%s, %.1f ms)",
            r.delivery_id,
            r.number,
            status,
            f"HTTP {r.status_code}" if r.status_code is not None else scrub(r.error),
            r.latency_ms,
            extra={
                "event": r.event_id,
                "delivery": r.delivery_id,
                "registration": r.registration_id,
                "org": r.org_id,
                "topic": r.topic,
                "attempt": r.number,
                "status": status,
                "http_status": r.status_code,
                "latency_ms": round(r.latency_ms, 3),
                "error": scrub(r.error),
            },
        )


def log_call(org: str, result: CallResult) -> None:
    """A line per blocking call, naming each receiver's outcome."""
    if not _calls.isEnabledFor(logging.INFO):
        return
    decision = "allow" if result.allowed else "deny"
    _calls.info(
        "call %s %s: %s%s in %.1f ms",
        result.call_id,
        result.topic,
        decision,
        " (partial)" if result.partial else "",
        result.elapsed * 1000,
        extra={
            "event": result.call_id,
            "org": org,
            "topic": result.topic,
            "status": decision,
            "partial": result.partial,
            "latency_ms": round(result.elapsed * 1000, 3),
            "registration": [o.registration_id for o in result.outcomes],
            "receivers": [
                {
                    "registration": o.registration_id,
                    "status": o.status,
                    "http_status": o.http_status,
                    "attempt": o.attempts,
                    "latency_ms": round(o.latency * 1000, 3),
                }
                for o in result.outcomes
            ],
        },
    )
