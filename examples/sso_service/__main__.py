"""Serve the local OpenID provider on http://127.0.0.1:8002 and the login service on
http://127.0.0.1:8003, the service's table and hookruntime's in one database, with
hookruntime's delivery worker in the same process and its dashboard at
http://127.0.0.1:8003/hooks/ui/.

``cd examples && python -m sso_service``, then open http://127.0.0.1:8003 and sign in
as ``alice`` / ``alice-password``. ``SSO_DATABASE_URL`` (default
``sqlite:///sso_service.db``) picks the database, ``SSO_ORG`` (``acme``) the org
whose registrations are called.
"""

from __future__ import annotations

import os
import secrets

import anyio
import uvicorn

from .app import served
from .provider import Client, Provider, User

PROVIDER = "http://127.0.0.1:8002"
SERVICE = "http://127.0.0.1:8003"


async def main() -> None:
    url = os.environ.get("SSO_DATABASE_URL", "sqlite:///sso_service.db")
    client = Client("sso-service", secrets.token_urlsafe(24), (f"{SERVICE}/auth",))
    provider = Provider(
        PROVIDER,
        [client],
        [User("u-alice", "alice", "alice-password", "alice@example.com", "Alice", "Liddell")],
    )
    app = served(
        url,
        org=os.environ.get("SSO_ORG", "acme"),
        issuer=PROVIDER,
        client_id=client.client_id,
        client_secret=client.client_secret,
        session_secret=secrets.token_urlsafe(32),
    )
    servers = [
        uvicorn.Server(uvicorn.Config(provider.app(), host="127.0.0.1", port=8002)),
        uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=8003)),
    ]
    async with anyio.create_task_group() as tasks:
        for server in servers:
            tasks.start_soon(server.serve)


if __name__ == "__main__":
    anyio.run(main)
