"""Outbound transport: one small client interface, the SSRF guard, limits."""

from .client import DEFAULT_MAX_BODY, HttpClient, Response
from .guard import GuardedResolver, blocked_reason, check_url

__all__ = [
    "DEFAULT_MAX_BODY",
    "GuardedResolver",
    "HttpClient",
    "Response",
    "blocked_reason",
    "check_url",
]
