"""Per-client login throttle (Litestar's RateLimitConfig on the Redis store).

Per-account throttling is in ``services.login``: it needs the login name from the body.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.middleware.rate_limit import RateLimitConfig

from backend.lib.net import client_address
from backend.settings import get_settings


def _client_key(request: Request[Any, Any, Any]) -> str:
    return "login:" + client_address(request)


login_rate_limit = RateLimitConfig(
    rate_limit=("minute", get_settings().auth.login_per_client_per_minute),
    identifier_for_request=_client_key,
    store="rate_limit",
)
