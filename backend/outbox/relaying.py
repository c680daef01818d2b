"""Handing new outbox messages to Redis right after a request commits (best effort)."""

from __future__ import annotations

import logging
from typing import Any

from backend.outbox.services import relay
from backend.settings import get_settings

log = logging.getLogger("gridaid.outbox")


async def relay_soon(app: Any) -> None:
    """If Redis is down this only logs: the worker's cron relay hands the messages over later."""
    try:
        await relay(app.state.arq, queue_name=get_settings().redis.queue_name)
    except Exception as exc:
        log.warning("outbox relay after commit failed (%s); the cron relay will retry", type(exc).__name__)
