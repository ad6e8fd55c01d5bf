"""hookruntime: blocking hooks under one deadline, and fire-and-forget hooks through a
durable outbox, signed in the wire format each receiver expects."""

from .catalog import Catalog, Topic
from .config import Settings
from .errors import (
    ConfigurationError,
    ConflictError,
    FieldError,
    HookRuntimeError,
    NotFoundError,
    PluginError,
    StoreError,
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
    "Catalog",
    "ConfigurationError",
    "ConflictError",
    "CreatedKey",
    "FieldError",
    "HookRuntime",
    "HookRuntimeError",
    "Message",
    "NotFoundError",
    "Plugin",
    "PluginError",
    "Profile",
    "Registration",
    "RetryPolicy",
    "Settings",
    "SignedRequest",
    "SimplePlugin",
    "StoreError",
    "Topic",
    "UnknownTopicError",
    "ValidationError",
    "VerificationError",
    "__version__",
]
