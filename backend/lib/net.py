"""Who is calling: the client address (behind our proxy or not) and a request id for correlation."""

from __future__ import annotations

import uuid
from typing import Any

from litestar.connection import ASGIConnection
from litestar.datastructures import MutableScopeHeaders
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from backend.settings import get_settings

REQUEST_ID_HEADER = "x-request-id"


def client_address(request: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The caller's IP. ``X-Forwarded-For`` counts only when our own proxy sets it (settings)."""
    if get_settings().auth.trust_forwarded_for:
        forwarded = request.headers.get("x-forwarded-for", "")
        # The proxy appends the address it saw: the last entry is the one we can trust.
        if forwarded:
            return forwarded.split(",")[-1].strip()[:64]
    return (request.client.host if request.client else "unknown")[:64]


def request_id(request: ASGIConnection[Any, Any, Any, Any]) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


class RequestIdMiddleware:
    """Gives every request an id (kept in state, echoed in the response) for logs and the audit log."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = str(uuid.uuid4())
        scope.setdefault("state", {})["request_id"] = rid

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableScopeHeaders.from_message(message)[REQUEST_ID_HEADER] = rid
            await send(message)

        await self.app(scope, receive, send_with_id)
