"""Every error hookruntime raises, under one base.

    HookRuntimeError
    ├── ConfigurationError      bad settings: database URL, master key, environment
    ├── PluginError             a plugin failed to load or declared something invalid
    ├── ValidationError         bad input to a public entry point; carries field errors
    │   └── UnknownTopicError   a topic name the catalog does not hold
    ├── NotFoundError           no such object in this org (another org's objects included)
    ├── ConflictError           a stale `rev`, a duplicate, or a state that forbids the change
    ├── StoreError              the database failed underneath us
    │   ├── StoreUnavailable    no connection: refused, unknown database, refused login, lost
    │   ├── StoreLocked         another process held the SQLite file's lock too long
    │   └── SchemaNotCurrent    the database is not migrated (`hookruntime migrate`)
    ├── VerificationError       a receiver could not verify a request's signature
    ├── ReentrancyError         a blocking call made while serving a blocking hook
    └── TransportError          an outbound request got no complete response
        ├── ConnectError        no connection (refused, reset, DNS, TLS)
        ├── RequestTimeout      the time allowed ran out
        ├── ResponseTooLarge    the response body passed the size cap
        └── TargetBlocked       the receiver's address is not public (SSRF guard)

Two more live beside what raises them: ``hookruntime.workflow.TransitionDenied`` (a
blocking hook denied a state machine's transition) and ``hookruntime.testing.DrainTimeout``
(also an ``AssertionError``: deliveries still open when ``drain`` gave up). The
dashboard's ``Forbidden`` and ``FormError`` never leave it: they become pages.

Lower-level errors are translated with ``raise … from`` so the cause stays visible.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "ConfigurationError",
    "ConflictError",
    "ConnectError",
    "FieldError",
    "HookRuntimeError",
    "NotFoundError",
    "PluginError",
    "ReentrancyError",
    "RequestTimeout",
    "ResponseTooLarge",
    "SchemaNotCurrent",
    "StoreError",
    "StoreLocked",
    "StoreUnavailable",
    "TargetBlocked",
    "TransportError",
    "UnknownTopicError",
    "ValidationError",
    "VerificationError",
]


class HookRuntimeError(Exception):
    """Base of every error hookruntime raises."""


class ConfigurationError(HookRuntimeError):
    """Settings that cannot work: a bad database URL, a missing master key."""


class PluginError(HookRuntimeError):
    """A plugin failed to load or declared something invalid; the message names the plugin."""

    def __init__(self, plugin: str, message: str) -> None:
        self.plugin = plugin
        super().__init__(f"plugin {plugin!r}: {message}")


@dataclass(frozen=True)
class FieldError:
    """One invalid field: where (a dotted path such as ``topics.0``) and why."""

    field: str
    message: str


class ValidationError(HookRuntimeError):
    """Bad input. ``errors`` lists every invalid field, not only the first."""

    def __init__(self, errors: Iterable[FieldError]) -> None:
        self.errors = tuple(errors)
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in self.errors))

    @classmethod
    def single(cls, field: str, message: str) -> ValidationError:
        return cls([FieldError(field, message)])


class UnknownTopicError(ValidationError):
    """A topic the catalog does not hold; the message names close matches."""

    def __init__(self, topic: str, known: Iterable[str], field: str = "topic") -> None:
        import difflib

        names = sorted(known)
        parts = [f"unknown topic {topic!r}"]
        close = difflib.get_close_matches(topic, names, n=3)
        if close:
            parts.append(f"did you mean {' or '.join(map(repr, close))}?")
        if len(names) <= 20:
            parts.append(f"known topics: {', '.join(names)}")
        else:
            parts.append(f"{len(names)} topics are known (`hookruntime topics` lists them)")
        self.topic = topic
        super().__init__([FieldError(field, "; ".join(parts))])


class NotFoundError(HookRuntimeError):
    """No such object in this org. Another org's objects are reported the same way."""


class ConflictError(HookRuntimeError):
    """The object changed since it was read (stale ``rev``), it already exists, or its
    state forbids the change (retrying a delivery that was delivered)."""


class StoreError(HookRuntimeError):
    """The database failed underneath an operation."""


class StoreUnavailable(StoreError):
    """The database cannot be reached: refused or lost connection, unknown database or
    role, a server starting up or shutting down. The message names the URL (never its
    password)."""


class StoreLocked(StoreError):
    """Another process held the SQLite file's write lock longer than the busy wait."""


class SchemaNotCurrent(StoreError):
    """The database's schema is not at the newest migration; ``hookruntime migrate``
    brings it there."""


class VerificationError(HookRuntimeError):
    """A request's signature, timestamp or format did not verify."""


class ReentrancyError(HookRuntimeError):
    """A blocking call was made while serving a blocking hook of the same chain."""


class TransportError(HookRuntimeError):
    """An outbound request got no complete response."""


class ConnectError(TransportError):
    """No connection could be made or kept: refused, reset, name resolution, TLS."""


class RequestTimeout(TransportError):
    """The time allowed for the request ran out."""


class ResponseTooLarge(TransportError):
    """The response body passed the size cap."""


class TargetBlocked(TransportError):
    """The receiver resolves to a loopback, private or otherwise non-public address."""
