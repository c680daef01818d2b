"""Routing jobs: an application's outbox message becomes department cases; overdue cases escalate.

``route_application`` runs once per outbox message (``_job_id = outbox:<key>``) and is idempotent
(``applications.routing``). Any failure is retried with a growing delay (arq ``Retry``); after
``ROUTE_MAX_TRIES`` the message is parked as a dead letter with its error, visible to admins
(``GET /api/v1/dead-letters``), never dropped. Retries route only their own message, so a message
that keeps failing never holds up the others.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

from arq import Retry

from backend.applications.routing import route
from backend.cases.escalation import escalate_overdue_cases
from backend.outbox import deadletters
from backend.outbox import services as outbox
from backend.settings import get_settings

log = logging.getLogger("gridaid.jobs.routing")

ROUTE_MAX_TRIES = 5
# First retry after this many seconds, doubling each time, at most RETRY_MAX_SECONDS.
RETRY_BASE_SECONDS = 5
RETRY_MAX_SECONDS = 300


def backoff(tries: int) -> int:
    return min(RETRY_BASE_SECONDS << max(tries - 1, 0), RETRY_MAX_SECONDS)


async def route_application(ctx: dict[str, Any], message_id: int) -> dict[str, Any]:
    tries = max(int(ctx.get("job_try") or 1), 1)
    try:
        outcome = await route(message_id, coalesce=tries == 1)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        log.warning("routing message %s failed on try %d: %s", message_id, tries, type(exc).__name__)
    else:
        await _withdraw(ctx, outcome.routed_keys)
        if outcome.own_problem is None:
            return {"applications": outcome.applications, "cases": outcome.cases, "done": outcome.already_done}
        error = outcome.own_problem
        log.warning("routing message %s cannot be routed (try %d): %s", message_id, tries, error)
    if tries >= ROUTE_MAX_TRIES:
        parked = await deadletters.park(message_id, error)
        log.error("routing message %s parked as dead letter %s after %d tries", message_id, parked, tries)
        return {"dead_letter": parked}
    with contextlib.suppress(Exception):
        await outbox.mark_failed(message_id, error)
    raise Retry(defer=backoff(tries))


async def _withdraw(ctx: dict[str, Any], keys: list[str]) -> None:
    """Take the queued jobs of messages this run routed off the queue (best effort).

    Only the queue entry goes: a job already started still finds its data, sees its message done
    and returns; one not started is skipped by arq (no score). Each skipped job saves the worker a
    run; a job left queued because this failed is harmless (it finds its message done)."""
    redis = ctx.get("redis")
    if not keys or redis is None:
        return
    with contextlib.suppress(Exception):
        await redis.zrem(get_settings().redis.queue_name, *(outbox.job_id(key) for key in keys))


async def escalate_case_deadlines(ctx: dict[str, Any]) -> dict[str, int]:
    return await escalate_overdue_cases(datetime.now(UTC))
