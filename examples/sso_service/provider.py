"""A local OpenID Connect provider, so that the example signs in through a real
authorization-code flow without an outside identity service: Authlib's authorization
server and its ``OpenIDCode`` grant, with the few lines of glue FastAPI needs (Authlib
ships that glue for Flask and Django only). Users, clients and codes live in memory.

Routes: ``/.well-known/openid-configuration``, ``/jwks``, ``/authorize`` (a password
form; the person consents by signing in), ``/token``. ID tokens are RS256 JWTs.
"""

from __future__ import annotations

import html
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from authlib.oauth2 import AuthorizationServer, OAuth2Error, OAuth2Request
from authlib.oauth2.rfc6749 import ClientMixin
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from authlib.oidc.core.models import AuthorizationCodeMixin
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from joserfc.jwk import RSAKey

SCOPES = ["openid", "profile", "email"]


@dataclass(frozen=True)
class User:
    sub: str
    username: str
    password: str
    email: str
    given_name: str
    family_name: str

    def get_user_id(self) -> str:
        return self.sub


@dataclass(frozen=True)
class Client(ClientMixin):  # type: ignore[misc]
    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uris[0]

    def get_allowed_scope(self, scope: str) -> str:
        return " ".join(s for s in scope.split() if s in SCOPES)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass(frozen=True)
class Code(AuthorizationCodeMixin):  # type: ignore[misc]
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: User
    nonce: str | None
    auth_time: int
    expires_at: float

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> list[str]:
        return ["pwd"]


class _Request(OAuth2Request):  # type: ignore[misc]
    """An OAuth2Request over a Starlette request already read: Authlib's server is
    synchronous, so the body is read before it runs."""

    def __init__(self, method: str, uri: str, headers: Any, data: dict[str, str]) -> None:
        super().__init__(method, uri, headers=headers)
        self.payload = BasicOAuth2Payload(data)
        self._data = data

    @property
    def args(self) -> dict[str, str]:
        return self._data

    @property
    def form(self) -> dict[str, str]:
        return self._data


async def _read(request: Request) -> _Request:
    data = dict(request.query_params)
    if request.method == "POST":
        data.update({k: str(v) for k, v in (await request.form()).items()})
    return _Request(request.method, str(request.url), request.headers, data)


class _CodeGrant(AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]  # noqa: RUF012

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        codes: dict[str, Code] = self.server.codes
        codes[code] = Code(
            code=code,
            client_id=request.client.get_client_id(),
            redirect_uri=request.payload.redirect_uri,
            scope=request.client.get_allowed_scope(request.payload.scope or ""),
            user=request.user,
            nonce=request.payload.data.get("nonce"),
            auth_time=int(time.time()),
            expires_at=time.time() + 300,
        )

    def query_authorization_code(self, code: str, client: Client) -> Code | None:
        found: Code | None = self.server.codes.get(code)
        if found is None or found.client_id != client.client_id or found.expires_at < time.time():
            return None
        return found

    def delete_authorization_code(self, authorization_code: Code) -> None:
        self.server.codes.pop(authorization_code.code, None)

    def authenticate_user(self, authorization_code: Code) -> User:
        return authorization_code.user


class _OpenIDCode(OpenIDCode):  # type: ignore[misc]
    def __init__(self, provider: Provider) -> None:
        super().__init__(require_nonce=True)
        self.provider = provider

    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        return any(code.nonce == nonce for code in self.provider.server.codes.values())

    def resolve_client_private_key(self, client: Client) -> RSAKey:
        return self.provider.key

    def get_client_algorithm(self, client: Client) -> str:
        return "RS256"

    def get_client_claims(self, client: Client) -> dict[str, Any]:
        return {"iss": self.provider.issuer, "aud": [client.client_id]}

    def get_encode_header(self, client: Client) -> dict[str, str]:
        return {"alg": "RS256", "kid": str(self.provider.key.kid)}

    def generate_user_info(self, user: User, scope: str) -> UserInfo:
        info = UserInfo(sub=user.sub, preferred_username=user.username)
        if "email" in scope:
            info["email"] = user.email
        if "profile" in scope:
            info["given_name"] = user.given_name
            info["family_name"] = user.family_name
        return info


class _Server(AuthorizationServer):  # type: ignore[misc]
    def __init__(self, clients: Iterable[Client]) -> None:
        super().__init__(scopes_supported=SCOPES)
        self.clients = {c.client_id: c for c in clients}
        self.codes: dict[str, Code] = {}
        self.register_token_generator(
            "default", BearerTokenGenerator(lambda **_kw: secrets.token_urlsafe(32))
        )

    def query_client(self, client_id: str) -> Client | None:
        return self.clients.get(client_id)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        pass  # no userinfo endpoint: the ID token carries the claims

    def create_oauth2_request(self, request: _Request) -> _Request:
        return request

    def handle_response(self, status: int, body: Any, headers: Any) -> Response:
        if isinstance(body, dict):
            return JSONResponse(body, status_code=status, headers=dict(headers))
        return Response(body, status_code=status, headers=dict(headers))

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        pass


@dataclass
class Provider:
    """The provider at ``issuer`` (its own base URL) for ``clients`` and ``users``."""

    issuer: str
    clients: list[Client]
    users: list[User]
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, auto_kid=True))

    def __post_init__(self) -> None:
        self.server = _Server(self.clients)
        self.server.register_grant(_CodeGrant, [_OpenIDCode(self)])

    def user(self, username: str, password: str) -> User | None:
        for user in self.users:
            if user.username == username and secrets.compare_digest(user.password, password):
                return user
        return None

    def app(self) -> FastAPI:
        app = FastAPI(title="local OpenID provider", openapi_url=None)
        server = self.server

        @app.get("/.well-known/openid-configuration")
        async def configuration() -> dict[str, Any]:
            return {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": SCOPES,
                "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            }

        @app.get("/jwks")
        async def jwks() -> dict[str, Any]:
            return {"keys": [self.key.as_dict(private=False)]}

        @app.get("/authorize")
        async def authorize_form(request: Request) -> Response:
            oauth = await _read(request)
            try:
                server.get_consent_grant(request=oauth)
            except OAuth2Error as exc:
                return _error_page(exc)
            return _login_page(oauth.payload.data)

        @app.post("/authorize")
        async def authorize(request: Request) -> Response:
            oauth = await _read(request)
            data = oauth.payload.data
            user = self.user(data.get("username", ""), data.get("password", ""))
            if user is None:
                return _login_page(data, "Unknown user name or wrong password.", 401)
            try:
                grant = server.get_consent_grant(request=oauth, end_user=user)
            except OAuth2Error as exc:
                return _error_page(exc)
            response: Response = server.create_authorization_response(
                request=oauth, grant_user=user, grant=grant
            )
            return response

        @app.post("/token")
        async def token(request: Request) -> Response:
            response: Response = server.create_token_response(request=await _read(request))
            return response

        return app


def _login_page(params: dict[str, str], error: str = "", status: int = 200) -> HTMLResponse:
    kept = {k: v for k, v in params.items() if k not in ("username", "password")}
    message = f"<p role='alert'>{html.escape(error)}</p>" if error else ""
    page = f"""<!doctype html><title>Sign in</title><h1>Local identity provider</h1>{message}
<form method="post" action="/authorize?{html.escape(urlencode(kept))}">
<label>User name <input name="username" autocomplete="username"></label>
<label>Password <input name="password" type="password" autocomplete="current-password"></label>
<button>Sign in</button></form>"""
    return HTMLResponse(page, status)


def _error_page(error: Any) -> HTMLResponse:
    # A bad client or redirect URI is shown here, never redirected to (RFC 6749 4.1.2.1).
    return HTMLResponse(f"<p>{html.escape(error.get_error_description())}</p>", 400)
