"""Serve the booking service on http://127.0.0.1:8001, its tables and hookruntime's in
one database, with hookruntime's delivery worker in the same process.

``cd examples && python -m booking_service``; ``BOOKING_DATABASE_URL`` (default
``sqlite:///booking_service.db``) picks the database, ``BOOKING_ORG`` (``acme``) the
org whose registrations are called, ``PORT`` the port.
"""

from __future__ import annotations

import os

import anyio
import uvicorn
from sqlalchemy.ext.asyncio import create_async_engine

from hookruntime import HookRuntime

from .app import create_app
from .models import Base, host_url


async def main() -> None:
    url = os.environ.get("BOOKING_DATABASE_URL", "sqlite:///booking_service.db")
    async with HookRuntime(url) as runtime:
        engine = create_async_engine(host_url(url))
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        app = create_app(runtime, engine, org=os.environ.get("BOOKING_ORG", "acme"))
        config = uvicorn.Config(app, host="127.0.0.1", port=int(os.environ.get("PORT", "8001")))
        await uvicorn.Server(config).serve()
        await engine.dispose()


if __name__ == "__main__":
    anyio.run(main)
