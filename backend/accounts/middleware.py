"""Bearer-token authentication for the API. Everything outside /api/ (the PWA, /health) is public."""

from __future__ import annotations

from litestar.connection import ASGIConnection
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from backend.accounts import services, sessions
from backend.lib.errors import NotAuthenticated
from backend.lib.net import client_address, request_id

EXCLUDE_OPT_KEY = "public"


class BearerTokenMiddleware(AbstractAuthenticationMiddleware):
    async def authenticate_request(self, connection: ASGIConnection) -> AuthenticationResult:  # type: ignore[type-arg]
        header = connection.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise NotAuthenticated()
        live = await sessions.resolve_access_token(token.strip())
        if live is None:
            raise NotAuthenticated(
                "Your session has ended; sign in again", "登录已失效，请重新登录", code="auth.token_invalid"
            )
        principal = await services.load_principal(
            live,
            client=client_address(connection),
            request_id=request_id(connection),
        )
        if principal is None:
            raise NotAuthenticated(code="auth.token_invalid")
        return AuthenticationResult(user=principal, auth=live)
