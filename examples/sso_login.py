"""An SSO login that waits on its hooks: two receivers answer `user_logged_in`, one
patches the profile, one may deny; the login applies the merged result.

Run: python examples/sso_login.py
"""

from __future__ import annotations

import json
import tempfile

import anyio
from aiohttp import web

from hookruntime import HookRuntime
from hookruntime.receiver import verify

SECRET = "signature_secret"


async def crm_hook(request: web.Request) -> web.Response:
    # As seed 001's receiver does: verify the JWS body with the shared secret.
    claims = verify("jws", request.headers, await request.read(), SECRET).payload
    return web.json_response(
        {"patch": {"userFields": [{"crm_tier": "gold"}], "firstName": claims["firstName"].title()}}
    )


async def policy_hook(request: web.Request) -> web.Response:
    claims = verify("jws", request.headers, await request.read(), SECRET).payload
    if claims["email"].endswith("@blocked.example"):
        return web.json_response(
            {
                "decision": "deny",
                "reason": "blocked domain",
                "user_message": "Your organisation has no access.",
            }
        )
    return web.Response(status=204)


async def main() -> None:
    app = web.Application()
    app.add_routes([web.post("/crm", crm_hook), web.post("/policy", policy_hook)])
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    with tempfile.TemporaryDirectory() as folder:
        async with HookRuntime(
            f"sqlite:///{folder}/hooks.db", workers=0, allow_private_targets=True
        ) as runtime:
            for path, priority in (("policy", 0), ("crm", 10)):
                await runtime.registrations.create(
                    org="acme",
                    topics=["user_logged_in"],
                    url=f"http://127.0.0.1:{port}/{path}",
                    secret=SECRET,
                    priority=priority,
                )

            for email in ("john@doe.com", "eve@blocked.example"):
                profile = {"id": "profile_org_id", "email": email, "firstName": "john"}
                result = await runtime.call("user_logged_in", profile, org="acme", deadline=1.5)
                if result.allowed:
                    print(f"{email}: logged in as", json.dumps(result.apply()))
                else:
                    print(f"{email}: denied ({result.reason}): {result.user_message}")
                print("   ", [(o.status, round(o.latency * 1000, 1)) for o in result.outcomes])
            assert result.reason == "blocked domain"
    await runner.cleanup()


if __name__ == "__main__":
    anyio.run(main)
