"""Outbound transport: one small client interface, the SSRF guard, limits."""

from .client import DEFAULT_MAX_BODY, HttpClient, Response

__all__ = ["DEFAULT_MAX_BODY", "HttpClient", "Response"]
