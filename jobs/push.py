"""Push and SMS jobs. Best-effort by design (R-JB-07): the inbox already holds the message.

``push_notify`` runs once per outbox message (``_job_id = outbox:<key>``); ``sms_fallback`` is a
cron. Both are idempotent: a repeat sends at most a duplicate nudge and never a second SMS.
Only a failure of our own storage is retried (arq ``Retry``); a push service's failure is
bookkeeping on the subscription, not a reason to run the job again.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from typing import Any

from arq import Retry

from backend.outbox import services as outbox
from backend.push.services import send_inbox_nudges
from backend.push.sms import LoggingSmsSender, SmsSender, send_fallback_sms

log = logging.getLogger("gridaid.jobs.push")

try:  # asyncpg is there whenever PostgreSQL is
    from asyncpg.exceptions import InterfaceError, PostgresConnectionError, TooManyConnectionsError

    _PG_TRANSIENT: tuple[type[BaseException], ...] = (
        PostgresConnectionError,
        TooManyConnectionsError,
        InterfaceError,
    )
except ImportError:  # pragma: no cover
    _PG_TRANSIENT = ()

# The database is away (restarting, failing over, locked): try again later, with the same message.
TRANSIENT_DB_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    sqlite3.OperationalError,
    *_PG_TRANSIENT,
)


def _backoff(ctx: dict[str, Any]) -> int:
    """5 s, 10 s, 20 s … capped at 5 min; after arq's max_tries the outbox relay re-enqueues later."""
    tries = max(int(ctx.get("job_try") or 1), 1)
    return min(5 << min(tries - 1, 6), 300)


async def push_notify(ctx: dict[str, Any], message_id: int) -> dict[str, int] | None:
    try:
        payload = await outbox.load(message_id)
        if payload is None:
            return None  # already done: a re-delivered job does nothing
        report = await send_inbox_nudges(payload.get("account_ids", []))
        await outbox.mark_done(message_id)
    except TRANSIENT_DB_ERRORS as exc:
        log.warning("push_notify %s: storage unavailable (%s); retrying", message_id, type(exc).__name__)
        raise Retry(defer=_backoff(ctx)) from exc
    except Exception as exc:
        # A bug, not an outage: arq will not retry it; leave the reason on the message for whoever looks.
        with contextlib.suppress(*TRANSIENT_DB_ERRORS):
            await outbox.mark_failed(message_id, f"{type(exc).__name__}: {exc}")
        raise
    return {"sent": report.sent, "gone": report.gone, "failed": report.failed, "skipped": report.skipped}


async def sms_fallback(ctx: dict[str, Any]) -> int:
    sender: SmsSender = ctx.get("sms_sender") or LoggingSmsSender()
    try:
        return await send_fallback_sms(sender)
    except TRANSIENT_DB_ERRORS as exc:
        log.warning("sms_fallback: storage unavailable (%s); retrying", type(exc).__name__)
        raise Retry(defer=_backoff(ctx)) from exc
