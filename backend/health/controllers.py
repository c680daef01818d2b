"""Probes for the deployment: /health says the process answers; /ready says it can do its work."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, get
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

from backend.lib.db import engine
from backend.lib.redis import redis_from_app
from backend.settings import get_settings


class HealthOut(msgspec.Struct):
    status: str


class ReadyOut(msgspec.Struct):
    status: str
    database: str
    redis: str
    worker: str


@get("/health", operation_id="health", opt={"public": True}, tags=["health"])
async def health() -> HealthOut:
    return HealthOut(status="ok")


@get("/ready", operation_id="ready", opt={"public": True}, tags=["health"], status_code=HTTP_200_OK)
async def ready(request: Request[Any, Any, Any]) -> Response[ReadyOut]:
    database = redis_state = worker = "down"
    try:
        await engine().run_ddl("SELECT 1")
        database = "ok"
    except Exception:
        request.logger.warning("ready: database check failed", exc_info=True)
    try:
        redis = redis_from_app(request.app)
        await redis.ping()
        redis_state = "ok"
        # arq --check semantics: the worker refreshes this key every health-check interval.
        worker = "ok" if await redis.exists(get_settings().redis.queue_name + ":health-check") else "down"
    except Exception:
        request.logger.warning("ready: redis check failed", exc_info=True)
    ok = database == redis_state == worker == "ok"
    body = ReadyOut(status="ready" if ok else "not_ready", database=database, redis=redis_state, worker=worker)
    return Response(body, status_code=HTTP_200_OK if ok else HTTP_503_SERVICE_UNAVAILABLE)
