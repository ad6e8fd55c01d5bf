"""hookruntime: blocking hooks under one deadline, and fire-and-forget hooks through a
durable outbox, signed in the wire format each receiver expects."""

from .blocking import BreakerPolicy, CallResult, Conflict, Outcome, serving_hook
from .catalog import Catalog, Topic
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
    StoreError,
    TargetBlocked,
    TransportError,
    UnknownTopicError,
    ValidationError,
    VerificationError,
)
from .keys import ApiKeyInfo, CreatedKey
from .plugins import Plugin, SimplePlugin
from .profiles import Message, Profile, RetryPolicy, SignedRequest
from .registrations import Registration
from .runtime import HookRuntime

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
    "ReentrancyError",
    "Registration",
    "RequestTimeout",
    "ResponseTooLarge",
    "RetryPolicy",
    "Settings",
    "SignedRequest",
    "SimplePlugin",
    "StoreError",
    "TargetBlocked",
    "Topic",
    "TransportError",
    "UnknownTopicError",
    "ValidationError",
    "VerificationError",
    "__version__",
    "serving_hook",
]
