"""hookruntime: blocking hooks under one deadline, and fire-and-forget hooks through a
durable outbox, signed in the wire format each receiver expects."""

import importlib as _importlib
import typing as _typing

from .config import Settings
from .errors import (
    ConfigurationError,
    ConflictError,
    ConnectError,
    FieldError,
    HookRuntimeError,
    NotFoundError,
    PluginError,
    ReentrancyError,
    RequestTimeout,
    ResponseTooLarge,
    SchemaNotCurrent,
    StoreError,
    StoreLocked,
    StoreUnavailable,
    TargetBlocked,
    TransportError,
    UnknownTopicError,
    ValidationError,
    VerificationError,
)

if _typing.TYPE_CHECKING:
    from .blocking import BreakerPolicy, CallResult, Conflict, Outcome, serving_hook
    from .catalog import Catalog, Topic
    from .keys import ApiKeyInfo, CreatedKey
    from .plugins import Plugin, SimplePlugin
    from .profiles import Message, Profile, RetryPolicy, SignedRequest
    from .queue.idempotency import Published
    from .registrations import Registration
    from .runtime import HookRuntime

# Imported on first use: a process that needs one part (a sender process needs only the
# HTTP client) does not pay ~1 s here for the database layer and the rest.
_LAZY = {
    "BreakerPolicy": ".blocking",
    "CallResult": ".blocking",
    "Conflict": ".blocking",
    "Outcome": ".blocking",
    "serving_hook": ".blocking",
    "Catalog": ".catalog",
    "Topic": ".catalog",
    "ApiKeyInfo": ".keys",
    "CreatedKey": ".keys",
    "Plugin": ".plugins",
    "SimplePlugin": ".plugins",
    "Message": ".profiles",
    "Profile": ".profiles",
    "RetryPolicy": ".profiles",
    "SignedRequest": ".profiles",
    "Published": ".queue.idempotency",
    "Registration": ".registrations",
    "HookRuntime": ".runtime",
}


def __getattr__(name: str) -> _typing.Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__version__ = "0.1.0"

__all__ = [
    "ApiKeyInfo",
    "BreakerPolicy",
    "CallResult",
    "Catalog",
    "ConfigurationError",
    "Conflict",
    "ConflictError",
    "ConnectError",
    "CreatedKey",
    "FieldError",
    "HookRuntime",
    "HookRuntimeError",
    "Message",
    "NotFoundError",
    "Outcome",
    "Plugin",
    "PluginError",
    "Profile",
    "Published",
    "ReentrancyError",
    "Registration",
    "RequestTimeout",
    "ResponseTooLarge",
    "RetryPolicy",
    "SchemaNotCurrent",
    "Settings",
    "SignedRequest",
    "SimplePlugin",
    "StoreError",
    "StoreLocked",
    "StoreUnavailable",
    "TargetBlocked",
    "Topic",
    "TransportError",
    "UnknownTopicError",
    "ValidationError",
    "VerificationError",
    "__version__",
    "serving_hook",
]
