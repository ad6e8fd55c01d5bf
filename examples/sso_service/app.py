"""The login service: OpenID Connect sign-in through Authlib, then the identity hooks.

On the way back from the provider (``/auth``): a first sign-in calls
``user_registered`` before the account is created from the provider's claims (and
that call's patch), every sign-in calls ``user_logged_in`` with the account's
profile; a deny shows the receivers' ``user_message`` and signs nobody in; the merged
patch of ``user_logged_in`` is applied to the claims kept in the session. A profile
edited here is saved with ``profile_updated`` in the same transaction. hookruntime's own
API, dashboard and reference are mounted at ``/hooks`` (``/hooks/ui/``, ``/hooks/docs``).
"""

from __future__ import annotations

import html
import json
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from authlib.integrations.starlette_client import OAuth, OAuthError
from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from starlette.middleware.sessions import SessionMiddleware

from hookruntime import CallResult, HookRuntime, api

from .models import Account, Base, host_url

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[Any]]


def served(url: str, **options: Any) -> FastAPI:
    """The service as ``python -m sso_service`` serves it, on the database ``url``
    (``options`` are :func:`create_app`'s): its lifespan opens the runtime (migrating
    hookruntime's tables, starting the delivery worker), then creates the service's
    table, and undoes both at shutdown."""
    runtime = HookRuntime(url)
    engine = create_async_engine(host_url(url))

    @asynccontextmanager
    async def tables(_app: FastAPI) -> AsyncIterator[None]:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        yield
        await engine.dispose()

    return create_app(runtime, engine, lifespan=api.lifespan(runtime, then=tables), **options)


def create_app(
    runtime: HookRuntime,
    engine: AsyncEngine,
    *,
    org: str,
    issuer: str,
    client_id: str,
    client_secret: str,
    session_secret: str,
    lifespan: Lifespan | None = None,
) -> FastAPI:
    """The service over the runtime and the host's engine (one database for both),
    signing in at the OpenID provider ``issuer``; the runtime is open already, or
    ``lifespan`` opens it."""
    app = FastAPI(title="sso service", lifespan=lifespan)
    app.mount("/hooks", api.create_app(runtime))
    # A signed (not encrypted) cookie; lax, so that it comes back with the provider's
    # redirect, which is a cross-site navigation.
    app.add_middleware(
        SessionMiddleware, secret_key=session_secret, session_cookie="sso", same_site="lax"
    )
    oauth = OAuth()
    oauth.register(
        "idp",
        client_id=client_id,
        client_secret=client_secret,
        server_metadata_url=f"{issuer}/.well-known/openid-configuration",
        client_kwargs={"scope": "openid profile email"},
    )

    async def profile_changed(session: AsyncSession, account: Account) -> None:
        await session.flush()  # the new rev, for the event
        await runtime.emit(
            "profile_updated", account.profile(), org=org, key=account.id, session=session
        )

    @app.get("/")
    async def home(request: Request) -> HTMLResponse:
        claims = request.session.get("claims")
        if claims is None:
            return _page("<p><a href='/login'>Sign in</a></p>")
        token = request.session.setdefault("csrf", secrets.token_urlsafe(16))
        first = html.escape(claims.get("firstName", ""), quote=True)
        last = html.escape(claims.get("lastName", ""), quote=True)
        return _page(
            f"<p>Signed in as {html.escape(claims.get('email', claims['id']))}</p>"
            f"<pre>{html.escape(json.dumps(claims, indent=2))}</pre>"
            "<form method='post' action='/profile'>"
            f"<input type='hidden' name='csrf' value='{token}'>"
            f"<label>First name <input name='firstName' value='{first}'></label>"
            f"<label>Last name <input name='lastName' value='{last}'></label>"
            "<button>Save</button></form>"
            "<form method='post' action='/logout'>"
            f"<input type='hidden' name='csrf' value='{token}'>"
            "<button>Sign out</button></form>"
        )

    @app.get("/me")
    async def me(request: Request) -> Response:
        claims = request.session.get("claims")
        return JSONResponse(claims) if claims else JSONResponse({"detail": "signed out"}, 401)

    @app.get("/login")
    async def login(request: Request) -> Response:
        response: Response = await oauth.idp.authorize_redirect(request, request.url_for("auth"))
        return response

    @app.get("/auth")
    async def auth(request: Request) -> Response:
        try:
            token = await oauth.idp.authorize_access_token(request)
        except OAuthError as exc:
            return _page(f"<p>Sign-in failed: {html.escape(exc.description or exc.error)}</p>", 400)
        info = token["userinfo"]
        subject = f"{info['iss']}|{info['sub']}"
        sso = {"provider": "oidc", "issuer": info["iss"], "sub": info["sub"]}
        async with AsyncSession(engine) as session:
            account = await _account(session, subject)
        # The hooks are called outside any transaction: no lock is held while they answer.
        if account is None:
            # The provider's claims seed the account; from then on it is edited here.
            seed = {
                "id": Account.new(subject).id,
                "email": info.get("email", ""),
                "firstName": info.get("given_name", ""),
                "lastName": info.get("family_name", ""),
                "sso": sso,
            }
            registered = await runtime.call("user_registered", seed, org=org)
            if not registered.allowed:
                return _denied(registered)
            account = Account(id=seed["id"], subject=subject)
            account.take(registered.apply(seed))
            async with AsyncSession(engine, expire_on_commit=False) as session, session.begin():
                session.add(account)
        claims = {**account.profile(), "sso": sso}
        logged_in = await runtime.call("user_logged_in", claims, org=org)
        if not logged_in.allowed:
            return _denied(logged_in)
        request.session.clear()
        request.session["claims"] = logged_in.apply(claims)
        return RedirectResponse("/", 303)

    @app.post("/profile")
    async def edit_profile(
        request: Request,
        csrf: str = Form(""),
        first_name: str = Form("", alias="firstName"),
        last_name: str = Form("", alias="lastName"),
    ) -> Response:
        claims = request.session.get("claims")
        if claims is None or not _same(csrf, request.session.get("csrf")):
            return _page("<p>Sign in again.</p>", 403)
        changes = {"firstName": first_name, "lastName": last_name}
        async with AsyncSession(engine, expire_on_commit=False) as session, session.begin():
            account = await session.get(Account, claims["id"])
            if account is None:
                return _page("<p>Sign in again.</p>", 403)
            if account.take(changes):
                await profile_changed(session, account)
        request.session["claims"] = {**claims, **account.profile()}
        return RedirectResponse("/", 303)

    @app.post("/logout")
    async def logout(request: Request, csrf: str = Form("")) -> Response:
        if _same(csrf, request.session.get("csrf")):
            request.session.clear()
        return RedirectResponse("/", 303)

    return app


async def _account(session: AsyncSession, subject: str) -> Account | None:
    return (await session.execute(select(Account).where(Account.subject == subject))).scalar()


def _same(given: str, expected: str | None) -> bool:
    return expected is not None and secrets.compare_digest(given, expected)


def _denied(result: CallResult) -> HTMLResponse:
    message = result.user_message or "You cannot sign in right now."
    return _page(f"<p role='alert'>{html.escape(message)}</p>", 403)


def _page(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(f"<!doctype html><title>SSO service</title>{body}", status)
