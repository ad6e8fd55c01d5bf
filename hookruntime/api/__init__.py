"""The HTTP API: a Starlette app, mountable into a host's ASGI app or served by
``hookruntime serve``. A host that mounts it passes :func:`lifespan` as its own lifespan."""

from .app import create_app
from .embed import get_runtime, lifespan

__all__ = ["create_app", "get_runtime", "lifespan"]
