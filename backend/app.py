"""The Litestar application: all wiring in one place."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from arq import create_pool
from litestar import Litestar, Response, Router
from litestar.config.cors import CORSConfig
from litestar.datastructures import MutableScopeHeaders, State
from litestar.logging.config import LoggingConfig
from litestar.middleware.base import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.static_files import create_static_files_router
from litestar.stores.redis import RedisStore
from litestar.stores.registry import StoreRegistry
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from backend.accounts.controllers import AccountController, AuthController, RolePolicyController
from backend.accounts.guards import role_guard
from backend.accounts.middleware import EXCLUDE_OPT_KEY, BearerTokenMiddleware
from backend.applications.controllers import ApplicationController, HouseholdApplicationController
from backend.audit.controllers import AuditController
from backend.cases.controllers import CaseController
from backend.departments.controllers import CatalogueController
from backend.grids.controllers import GridController
from backend.health.controllers import health, ready
from backend.households.controllers import HouseholdController
from backend.lib import db
from backend.lib import redis as redis_lib
from backend.lib.errors import EXCEPTION_HANDLERS
from backend.lib.net import RequestIdMiddleware
from backend.matching.controllers import HouseholdMatchingController, RulesController
from backend.notifications.controllers import InboxController
from backend.orgs.controllers import OrgUnitController
from backend.outbox.controllers import DeadLetterController
from backend.push.controllers import PushController
from backend.requests.controllers import RequestController, ResidentController
from backend.settings import get_settings
from backend.sync.controllers import SyncController
from backend.sync.health import SyncHealthController
from backend.tasks.controllers import CoverController, TaskController
from backend.visits.controllers import PhotoController, TaskVisitController, VisitController
from backend.warnings.controllers import ApiKeyController, WarningController
from backend.workers.controllers import GridWorkloadController, WorkerController

PWA_DIR = Path(__file__).resolve().parent.parent / "pwa" / "dist"
PWA_SOURCE_DIR = Path(__file__).resolve().parent.parent / "pwa" / "public"

API_CONTROLLERS = [
    AuthController,
    AccountController,
    RolePolicyController,
    OrgUnitController,
    CatalogueController,
    HouseholdController,
    GridController,
    InboxController,
    WarningController,
    ApiKeyController,
    TaskController,
    CoverController,
    SyncController,
    SyncHealthController,
    TaskVisitController,
    VisitController,
    PhotoController,
    WorkerController,
    GridWorkloadController,
    PushController,
    AuditController,
    RulesController,
    HouseholdMatchingController,
    ResidentController,
    RequestController,
    HouseholdApplicationController,
    ApplicationController,
    CaseController,
    DeadLetterController,
]

_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
}


async def _headers(response: Response) -> Response:  # type: ignore[type-arg]
    for name, value in _SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


async def _api_headers(response: Response) -> Response:  # type: ignore[type-arg]
    # API answers carry personal data: no browser or proxy may keep a copy.
    response.headers["Cache-Control"] = "no-store"
    return await _headers(response)


@asynccontextmanager
async def lifespan(app: Litestar) -> AsyncIterator[None]:
    await db.open_pool()
    app.state.arq = await create_pool(redis_lib.arq_settings())
    try:
        yield
    finally:
        await app.state.arq.aclose()
        await app.state.redis.aclose()
        await db.close_pool()


def _pwa_cache_headers(path: str) -> dict[str, str]:
    # Content-hashed bundles never change under their name; everything else (index.html, sw.js, the
    # manifest) must be revalidated so a new version reaches phones. The service worker does the
    # offline caching, versioned.
    if path.startswith("/assets/"):
        return {"Cache-Control": "public, max-age=31536000, immutable"}
    if path.startswith("/icons/"):
        return {"Cache-Control": "public, max-age=86400"}
    if path == "/sw.js":
        return {"Cache-Control": "no-cache", "Service-Worker-Allowed": "/"}
    return {"Cache-Control": "no-cache"}


def _pwa_cache_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        extra = _pwa_cache_headers(scope.get("path", ""))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                for name, value in extra.items():
                    headers[name] = value
            await send(message)

        await app(scope, receive, send_with_headers)

    return middleware


def _static_router() -> list[Router]:
    directory = PWA_DIR if PWA_DIR.is_dir() else PWA_SOURCE_DIR
    if not directory.is_dir():
        return []
    return [
        create_static_files_router(
            path="/",
            directories=[directory],
            html_mode=True,
            include_in_schema=False,
            opt={"public": True},
            name="pwa",
            middleware=[_pwa_cache_middleware],
        )
    ]


def create_app() -> Litestar:
    settings = get_settings()
    redis = redis_lib.client()
    # Authentication and guards sit on the API router only: /health, /ready, /schema and the PWA
    # are public by design.
    api = Router(
        path="/",
        route_handlers=API_CONTROLLERS,
        middleware=[DefineMiddleware(BearerTokenMiddleware, exclude_from_auth_key=EXCLUDE_OPT_KEY)],
        guards=[role_guard],
        after_request=_api_headers,
    )
    return Litestar(
        route_handlers=[health, ready, api, *_static_router()],
        lifespan=[lifespan],
        state=State({"redis": redis}),
        stores=StoreRegistry(
            default_factory=lambda name: RedisStore(redis, namespace=f"gridaid:{name}", handle_client_shutdown=False)
        ),
        middleware=[
            RequestIdMiddleware,
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        after_request=_headers,
        request_max_body_size=settings.server.max_body_bytes,
        cors_config=CORSConfig(allow_origins=[]),
        openapi_config=OpenAPIConfig(title="GridAid API", version="1", path="/schema"),
        logging_config=LoggingConfig(configure_root_logger=False, log_exceptions="never"),
        debug=False,
    )
