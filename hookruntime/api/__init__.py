"""The HTTP API: a Starlette app, mountable into a host's ASGI app or served by
``hookruntime serve``."""

from .app import create_app

__all__ = ["create_app"]
