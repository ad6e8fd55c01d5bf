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
    "client_class",
]


def client_class(name: str) -> type[HttpClient]:
    """The backend named by ``Settings.http_client`` (already resolved from ``auto``).
    The optional ones are imported only when chosen."""
    if name == "httpx":
        from .httpx_client import HttpxClient

        return HttpxClient
    if name == "reqwest":
        from .reqwest_client import ReqwestClient

        return ReqwestClient
    return HttpClient
