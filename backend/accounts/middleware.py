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
        principal = await services.authenticate(
            token.strip(), client=client_address(connection), request_id=request_id(connection)
        )
        if principal is None:
            raise NotAuthenticated(
                "Your session has ended; sign in again", "登录已失效，请重新登录", code="auth.token_invalid"
            )
        live = sessions.LiveSession(
            session_id=principal.session_id, account_id=principal.account_id, mfa_pending=principal.mfa_pending
        )
        return AuthenticationResult(user=principal, auth=live)
